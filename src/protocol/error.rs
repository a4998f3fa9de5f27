//! The protocol layer's error type.

use super::hex::HexError;
use super::ids::EventId;

/// Everything that can go wrong when parsing, checking or building Nostr protocol values.
///
/// Each variant says which check failed, so a caller can tell a malformed frame
/// ([`Error::Json`], [`Error::Malformed`], [`Error::UnknownMessage`]) from a forged event
/// ([`Error::IdMismatch`], [`Error::InvalidSignature`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not JSON at all (syntax error or truncated input).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The JSON is well formed but has the wrong shape: a missing or extra-typed field,
    /// wrong arity, bad hex inside an event, a number out of range.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message array whose first element names no message type this crate knows.
    /// The relay (or client) may speak a newer NIP; the frame is reported, not fatal.
    #[error("unknown message type {0:?}")]
    UnknownMessage(String),
    /// A hex string had the wrong length, uppercase letters or non-hex characters.
    #[error("invalid hex: {0}")]
    Hex(#[from] HexError),
    /// The event's `id` is not the SHA-256 of its NIP-01 serialization: the content, tags,
    /// kind, created_at or pubkey were changed after signing, or the id was replaced.
    #[error("event id mismatch: claims {claimed}, content hashes to {computed}")]
    IdMismatch {
        /// The id the event carries.
        claimed: EventId,
        /// The id recomputed from its content.
        computed: EventId,
    },
    /// The BIP-340 signature does not verify for the event id and public key (this includes
    /// a public key that is not a point on secp256k1, and out-of-range signature values).
    #[error("invalid signature")]
    InvalidSignature,
    /// A secret key is zero or not below the curve order.
    #[error("invalid secret key")]
    InvalidSecretKey,
    /// A bech32 string (NIP-19) failed to decode: bad checksum, bad characters, wrong
    /// prefix for what was asked, a bad TLV layout or wrong data length.
    #[error("invalid NIP-19 string: {0}")]
    Nip19(String),
}

impl Error {
    /// Classifies a `serde_json` error: syntax and truncation are [`Error::Json`], anything
    /// about types and shape is [`Error::Malformed`].
    pub(crate) fn from_json(err: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => Error::Json(err.to_string()),
            Category::Data => Error::Malformed(err.to_string()),
        }
    }
}

/// `Result` with this layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
