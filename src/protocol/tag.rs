//! Event tags.

use serde::{Deserialize, Serialize};

use super::ids::{EventId, PublicKey};

/// One tag of an event: an array of strings, `["e", "<id>", "<relay>"]`.
///
/// The first element is the tag name; NIP-01 filters match on the first *value* (the second
/// element) of single-letter tags. Empty tags are legal and kept as they are.
///
/// ```
/// use actix_nostr::protocol::Tag;
/// let tag = Tag::new(["t", "nostr"]);
/// assert_eq!(tag.name(), Some("t"));
/// assert_eq!(tag.value(), Some("nostr"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(Vec<String>);

impl Tag {
    /// A tag from its elements.
    pub fn new<I, S>(elements: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Tag(elements.into_iter().map(Into::into).collect())
    }

    /// `["e", <event id>]`: a reference to an event.
    pub fn event(id: &EventId) -> Self {
        Tag(vec!["e".to_owned(), id.to_hex()])
    }

    /// `["p", <pubkey>]`: a reference to a user.
    pub fn public_key(pubkey: &PublicKey) -> Self {
        Tag(vec!["p".to_owned(), pubkey.to_hex()])
    }

    /// `["d", <identifier>]`: the identifier of an addressable event.
    pub fn identifier(d: impl Into<String>) -> Self {
        Tag(vec!["d".to_owned(), d.into()])
    }

    /// The tag name (first element), if any.
    pub fn name(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// The first value (second element), if any.
    pub fn value(&self) -> Option<&str> {
        self.0.get(1).map(String::as_str)
    }

    /// All elements.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The elements, by value.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl From<Vec<String>> for Tag {
    fn from(v: Vec<String>) -> Self {
        Tag(v)
    }
}
