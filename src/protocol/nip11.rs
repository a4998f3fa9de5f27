//! NIP-11: the relay information document.

use serde::{Deserialize, Deserializer, Serialize};

/// A relay's NIP-11 information document, as far as a client acts on it. Unknown fields are
/// ignored; fields of the wrong type read as absent rather than failing the whole document.
///
/// ```
/// use actix_nostr::protocol::nip11::RelayInformation;
/// let doc = r#"{"name":"r","supported_nips":[1,11],"limitation":{"max_subscriptions":20,"auth_required":true}}"#;
/// let info = RelayInformation::from_json(doc)?;
/// assert_eq!(info.limitation.max_subscriptions, Some(20));
/// assert_eq!(info.limitation.auth_required, Some(true));
/// # Ok::<(), actix_nostr::protocol::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RelayInformation {
    /// The relay's name.
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    /// A description.
    #[serde(deserialize_with = "lenient")]
    pub description: Option<String>,
    /// The operator's public key (hex).
    #[serde(deserialize_with = "lenient")]
    pub pubkey: Option<String>,
    /// How to reach the operator.
    #[serde(deserialize_with = "lenient")]
    pub contact: Option<String>,
    /// NIPs the relay supports.
    #[serde(deserialize_with = "lenient")]
    pub supported_nips: Option<Vec<u32>>,
    /// The relay software.
    #[serde(deserialize_with = "lenient")]
    pub software: Option<String>,
    /// Its version.
    #[serde(deserialize_with = "lenient")]
    pub version: Option<String>,
    /// Limits the relay enforces.
    #[serde(deserialize_with = "lenient_default")]
    pub limitation: Limitation,
}

/// The `limitation` object of a NIP-11 document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Limitation {
    /// Largest message, in bytes, the relay accepts.
    #[serde(deserialize_with = "lenient")]
    pub max_message_length: Option<u64>,
    /// Most subscriptions open at once per connection.
    #[serde(deserialize_with = "lenient")]
    pub max_subscriptions: Option<u64>,
    /// Most filters per REQ.
    #[serde(deserialize_with = "lenient")]
    pub max_filters: Option<u64>,
    /// Largest `limit` honoured.
    #[serde(deserialize_with = "lenient")]
    pub max_limit: Option<u64>,
    /// Whether NIP-42 authentication is required before anything else.
    #[serde(deserialize_with = "lenient")]
    pub auth_required: Option<bool>,
    /// Whether a payment is required to write.
    #[serde(deserialize_with = "lenient")]
    pub payment_required: Option<bool>,
    /// Whether writes are restricted.
    #[serde(deserialize_with = "lenient")]
    pub restricted_writes: Option<bool>,
}

/// Reads `T`, or `None` when the value has another type.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

fn lenient_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let value = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

impl RelayInformation {
    /// Parses a document. Fails only if the text is not a JSON object.
    pub fn from_json(json: &str) -> super::Result<Self> {
        serde_json::from_str(json).map_err(super::Error::from_json)
    }
}
