//! Signed events: the one data type of Nostr (NIP-01).

use std::cell::RefCell;

use secp256k1::{schnorr, XOnlyPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::ids::{EventId, PublicKey, Signature};
use super::kind::Kind;
use super::tag::Tag;
use super::timestamp::Timestamp;

/// A signed Nostr event (NIP-01).
///
/// ```json
/// {"id": <32-byte hex>, "pubkey": <32-byte hex>, "created_at": <unix seconds>,
///  "kind": <0..=65535>, "tags": [[<string>, ...], ...], "content": <string>,
///  "sig": <64-byte hex>}
/// ```
///
/// Parsing checks the *structure* (every field present, right JSON types, lowercase hex of
/// the right length, numbers in range; unknown fields are ignored). Whether the id and
/// signature are right is a separate, explicit step: [`Event::verify`].
///
/// ```
/// use actix_nostr::protocol::{Event, EventBuilder, Keys, Kind};
/// let keys = Keys::generate();
/// let event = EventBuilder::new(Kind::TEXT_NOTE, "hello").sign(&keys);
/// let json = event.as_json();
/// let parsed = Event::from_json(&json)?;
/// parsed.verify()?;
/// assert_eq!(parsed, event);
/// # Ok::<(), actix_nostr::protocol::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// SHA-256 of the NIP-01 serialization, see [`Event::compute_id`].
    pub id: EventId,
    /// The author's x-only public key.
    pub pubkey: PublicKey,
    /// When the author says it was created.
    pub created_at: Timestamp,
    /// What kind of event it is.
    pub kind: Kind,
    /// Tags, in order (the order is part of the id).
    pub tags: Vec<Tag>,
    /// Arbitrary text.
    pub content: String,
    /// BIP-340 signature of `id` by `pubkey`.
    pub sig: Signature,
}

thread_local! {
    /// Reused serialization buffer for id computation: the hot path allocates nothing.
    static ID_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

impl Event {
    /// Parses an event object from JSON, checking its structure only.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(Error::from_json)
    }

    /// The event as compact JSON.
    pub fn as_json(&self) -> String {
        // Serializing plain strings, numbers and arrays cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Recomputes the id from the other fields: SHA-256 of the UTF-8 JSON array
    /// `[0,<pubkey>,<created_at>,<kind>,<tags>,<content>]` with no whitespace.
    ///
    /// Strings are escaped as NIP-01 says (`\n`, `\"`, `\\`, `\r`, `\t`, `\b`, `\f`), the other
    /// control characters U+0000..U+001F as lowercase `\u00xx` (what `JSON.stringify` and
    /// `serde_json` write, and what real events are signed with), everything else raw UTF-8.
    pub fn compute_id(&self) -> EventId {
        compute_id(
            &self.pubkey,
            self.created_at,
            self.kind,
            &self.tags,
            &self.content,
        )
    }

    /// Checks that `id` matches the content. [`Error::IdMismatch`] otherwise.
    pub fn verify_id(&self) -> Result<()> {
        let computed = self.compute_id();
        if computed == self.id {
            Ok(())
        } else {
            Err(Error::IdMismatch {
                claimed: self.id,
                computed,
            })
        }
    }

    /// Checks the BIP-340 signature of `id` by `pubkey` (without recomputing the id).
    /// [`Error::InvalidSignature`] otherwise, including for a pubkey that is not on the curve.
    pub fn verify_signature(&self) -> Result<()> {
        let pubkey = XOnlyPublicKey::from_byte_array(*self.pubkey.as_bytes())
            .map_err(|_| Error::InvalidSignature)?;
        let sig = schnorr::Signature::from_byte_array(*self.sig.as_bytes());
        schnorr::verify(&sig, self.id.as_bytes(), &pubkey).map_err(|_| Error::InvalidSignature)
    }

    /// Full check: the id first ([`Error::IdMismatch`]), then the signature
    /// ([`Error::InvalidSignature`]).
    pub fn verify(&self) -> Result<()> {
        self.verify_id()?;
        self.verify_signature()
    }

    /// The first value of the first tag named `name`, if any.
    pub fn tag_value(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.name() == Some(name))
            .and_then(Tag::value)
    }

    /// The `d` tag's value, `""` if absent: the identifier of an addressable event.
    pub fn identifier(&self) -> &str {
        self.tag_value("d").unwrap_or("")
    }
}

/// Computes an event id from its parts (see [`Event::compute_id`]).
pub(crate) fn compute_id(
    pubkey: &PublicKey,
    created_at: Timestamp,
    kind: Kind,
    tags: &[Tag],
    content: &str,
) -> EventId {
    ID_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, &(0u8, pubkey, created_at, kind, tags, content));
        let digest: [u8; 32] = Sha256::digest(&buf[..]).into();
        if buf.capacity() > 1 << 20 {
            // Don't keep a huge buffer alive after one huge event.
            *buf = Vec::with_capacity(1024);
        }
        EventId::from_bytes(digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_escapes_like_nip01() {
        let mut buf = Vec::new();
        let content = "a\nb\"c\\d\re\tf\u{8}g\u{c}h\u{0}\u{1f}\u{7f}\u{2028}é🤙/";
        serde_json::to_writer(&mut buf, &content).expect("writes");
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            "\"a\\nb\\\"c\\\\d\\re\\tf\\bg\\fh\\u0000\\u001f\u{7f}\u{2028}é🤙/\""
        );
    }
}
