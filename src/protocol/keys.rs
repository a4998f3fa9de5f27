//! Key pairs and signing.

use std::fmt;
use std::str::FromStr;

use secp256k1::{schnorr, Keypair, SecretKey};

use super::error::{Error, Result};
use super::event::{compute_id, Event};
use super::hex;
use super::ids::{PublicKey, Signature};
use super::kind::Kind;
use super::nip19;
use super::tag::Tag;
use super::timestamp::Timestamp;

/// A secp256k1 key pair for signing events.
///
/// The secret key never appears in `Debug` output.
///
/// ```
/// use actix_nostr::protocol::Keys;
/// let keys = Keys::parse("0000000000000000000000000000000000000000000000000000000000000003")?;
/// assert_eq!(
///     keys.public_key().to_hex(),
///     "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
/// );
/// assert!(keys.npub().starts_with("npub1"));
/// assert!(!format!("{keys:?}").contains("0003"));
/// # Ok::<(), actix_nostr::protocol::Error>(())
/// ```
#[derive(Clone)]
pub struct Keys {
    keypair: Keypair,
    public_key: PublicKey,
}

impl Keys {
    /// Generates a fresh random key pair.
    pub fn generate() -> Self {
        Self::from_keypair(Keypair::new(&mut rand::rng()))
    }

    /// Parses a secret key given as 64 lowercase hex characters or as `nsec1…` (NIP-19).
    pub fn parse(secret: &str) -> Result<Self> {
        let secret = secret.trim();
        let bytes = if secret
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("nsec1"))
        {
            nip19::decode_nsec(secret)?
        } else {
            hex::decode_array::<32>(secret)?
        };
        Self::from_secret_bytes(bytes)
    }

    /// A key pair from the 32 secret-key bytes. [`Error::InvalidSecretKey`] for zero or a
    /// value not below the curve order.
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Result<Self> {
        let sk = SecretKey::from_secret_bytes(bytes).map_err(|_| Error::InvalidSecretKey)?;
        Ok(Self::from_keypair(Keypair::from_secret_key(&sk)))
    }

    fn from_keypair(keypair: Keypair) -> Self {
        let (xonly, _) = keypair.x_only_public_key();
        Keys {
            keypair,
            public_key: PublicKey::from_bytes(xonly.to_byte_array()),
        }
    }

    /// The x-only public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The public key as `npub1…`.
    pub fn npub(&self) -> String {
        nip19::encode_npub(&self.public_key)
    }

    /// The secret key as 64 lowercase hex characters. Handle with care.
    pub fn secret_key_hex(&self) -> String {
        hex::encode(&self.keypair.secret_key().to_secret_bytes())
    }

    /// The secret key as `nsec1…`. Handle with care.
    pub fn nsec(&self) -> String {
        nip19::encode_nsec(&self.keypair.secret_key().to_secret_bytes())
    }

    /// Signs a 32-byte message (an event id) with BIP-340 and fresh auxiliary randomness.
    pub fn sign_hash(&self, hash: &[u8; 32]) -> Signature {
        let sig = schnorr::sign(hash, &self.keypair);
        Signature::from_bytes(sig.to_byte_array())
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("public_key", &self.public_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl FromStr for Keys {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Keys::parse(s)
    }
}

/// Builds and signs an event.
///
/// ```
/// use actix_nostr::protocol::{EventBuilder, Keys, Kind, Tag, Timestamp};
/// let keys = Keys::generate();
/// let event = EventBuilder::new(Kind::TEXT_NOTE, "gm")
///     .tag(Tag::new(["t", "gm"]))
///     .created_at(Timestamp::from_secs(1_700_000_000))
///     .sign(&keys);
/// assert!(event.verify().is_ok());
/// assert_eq!(event.pubkey, keys.public_key());
/// ```
#[derive(Debug, Clone)]
pub struct EventBuilder {
    kind: Kind,
    content: String,
    tags: Vec<Tag>,
    created_at: Option<Timestamp>,
}

impl EventBuilder {
    /// An event of `kind` with `content`, no tags, created now unless set.
    pub fn new(kind: Kind, content: impl Into<String>) -> Self {
        EventBuilder {
            kind,
            content: content.into(),
            tags: Vec::new(),
            created_at: None,
        }
    }

    /// A kind-1 text note.
    pub fn text_note(content: impl Into<String>) -> Self {
        Self::new(Kind::TEXT_NOTE, content)
    }

    /// Appends one tag.
    pub fn tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// Appends tags.
    pub fn tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags.extend(tags);
        self
    }

    /// Sets `created_at`. Defaults to [`Timestamp::now`] at signing.
    pub fn created_at(mut self, at: Timestamp) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Computes the id and signs it.
    pub fn sign(self, keys: &Keys) -> Event {
        let created_at = self.created_at.unwrap_or_else(Timestamp::now);
        let pubkey = keys.public_key();
        let id = compute_id(&pubkey, created_at, self.kind, &self.tags, &self.content);
        let sig = keys.sign_hash(id.as_bytes());
        Event {
            id,
            pubkey,
            created_at,
            kind: self.kind,
            tags: self.tags,
            content: self.content,
            sig,
        }
    }
}
