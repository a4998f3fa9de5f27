//! NIP-19: bech32-encoded entities for display, copy-paste and QR codes.
//!
//! NIP-19 strings are never part of the wire protocol (events and filters always carry hex);
//! they are what users see and type. Each string is `<prefix>1<data><checksum>` in bech32
//! (BIP-173, *not* bech32m):
//!
//! | prefix     | data                                      | here                                                      |
//! |------------|-------------------------------------------|-----------------------------------------------------------|
//! | `npub`     | 32-byte public key                        | [`encode_npub`], [`decode_npub`]                          |
//! | `nsec`     | 32-byte secret key                        | [`encode_nsec`], [`decode_nsec`]                          |
//! | `note`     | 32-byte event id                          | [`encode_note`], [`decode_note`]                          |
//! | `nprofile` | TLV: public key, relays                   | [`Nip19Profile`], [`encode_nprofile`], [`decode_nprofile`] |
//! | `nevent`   | TLV: event id, relays, author, kind       | [`Nip19Event`], [`encode_nevent`], [`decode_nevent`]      |
//! | `naddr`    | TLV: `d` identifier, relays, author, kind | [`Nip19Entity::Naddr`], [`encode_naddr`], [`decode`]      |
//! | `nrelay`   | deprecated by NIP-19                      | rejected                                                  |
//!
//! [`decode`] reads any of them into a [`Nip19Entity`].
//!
//! # TLV
//!
//! The data of `nprofile`, `nevent` and `naddr` is a list of type-length-value records, `T` and
//! `L` one byte each: `0` special (public key, event id or `d` identifier), `1` relay URL
//! (ASCII, may repeat), `2` author (32 bytes), `3` kind (`u32`, big-endian). Encoders here write
//! them in that order (as go-nostr and nostr-tools do); decoders accept any order.
//!
//! # How strict decoding is
//!
//! Every function returns [`Error::Nip19`] saying what is wrong, and none panics on any input.
//!
//! * Bech32 checksum only: a bech32m checksum is reported as such and rejected.
//! * All lowercase or all uppercase (as BIP-173 allows, for QR codes); mixed case is rejected.
//! * At most [`MAX_LENGTH`] characters, the limit NIP-19 sets (BIP-173's 90 does not apply).
//! * Padding bits must be zero and fewer than five, as BIP-173 requires.
//! * Unknown TLV types are ignored, as NIP-19 requires; types 2 and 3 inside an `nprofile` are
//!   unknown there.
//! * A known TLV with the wrong length, a repeated non-relay TLV, a relay that is not ASCII, an
//!   identifier that is not UTF-8 and a kind above 65535 are errors. (Some decoders, such as
//!   rust-nostr, drop a malformed `nevent` author instead; go-nostr rejects it, as this one does.)
//! * `ncryptsec` (NIP-49) and `nrelay` are recognised and rejected as unsupported.
//!
//! ```
//! use actix_nostr::protocol::nip19::{self, Nip19Entity};
//! use actix_nostr::protocol::PublicKey;
//!
//! let npub = "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6";
//! let pk = nip19::decode_npub(npub)?;
//! assert_eq!(
//!     pk,
//!     PublicKey::from_hex("3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d")?
//! );
//! assert_eq!(nip19::encode_npub(&pk), npub);
//! assert_eq!(nip19::decode(npub)?, Nip19Entity::Npub(pk));
//!
//! // A secret key is not a public key.
//! let nsec = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5";
//! assert!(nip19::decode_npub(nsec).unwrap_err().to_string().contains("expected npub, found nsec"));
//! # Ok::<(), actix_nostr::protocol::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use bech32::primitives::checksum::Checksum;
use bech32::primitives::decode::{
    CharError, ChecksumError, UncheckedHrpstring, UncheckedHrpstringError,
};
use bech32::{Bech32, Bech32m, Hrp};

use super::error::{Error, Result};
use super::ids::{EventId, PublicKey};
use super::kind::Kind;

/// The longest NIP-19 string accepted or produced: NIP-19 says strings "SHOULD be limited in
/// size to 5000 characters". Long `nprofile`/`nevent`/`naddr` strings with many relays exceed
/// the 1023 characters the `bech32` crate allows by default.
pub const MAX_LENGTH: usize = 5000;

const NPUB: Hrp = Hrp::parse_unchecked("npub");
const NSEC: Hrp = Hrp::parse_unchecked("nsec");
const NOTE: Hrp = Hrp::parse_unchecked("note");
const NPROFILE: Hrp = Hrp::parse_unchecked("nprofile");
const NEVENT: Hrp = Hrp::parse_unchecked("nevent");
const NADDR: Hrp = Hrp::parse_unchecked("naddr");

const TLV_SPECIAL: u8 = 0;
const TLV_RELAY: u8 = 1;
const TLV_AUTHOR: u8 = 2;
const TLV_KIND: u8 = 3;

/// Bech32 (BIP-173) with NIP-19's [`MAX_LENGTH`] in place of the 1023 characters of
/// [`bech32::Bech32`]: the same generator and target residue, so the same strings.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum NostrBech32 {}

impl Checksum for NostrBech32 {
    type MidstateRepr = u32;
    const CODE_LENGTH: usize = MAX_LENGTH;
    const CHECKSUM_LENGTH: usize = <Bech32 as Checksum>::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = <Bech32 as Checksum>::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = <Bech32 as Checksum>::TARGET_RESIDUE;
}

/// A profile to share: a public key and relays where it is likely to be found (`nprofile`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nip19Profile {
    /// The profile's public key (TLV 0).
    pub public_key: PublicKey,
    /// Relay URLs, in order (TLV 1, each ASCII and at most 255 bytes).
    pub relays: Vec<String>,
}

/// An event to share: its id and hints to find it (`nevent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nip19Event {
    /// The event id (TLV 0).
    pub id: EventId,
    /// Relay URLs, in order (TLV 1, each ASCII and at most 255 bytes).
    pub relays: Vec<String>,
    /// The event's author, if given (TLV 2).
    pub author: Option<PublicKey>,
    /// The event's kind, if given (TLV 3).
    pub kind: Option<Kind>,
}

/// Any decoded NIP-19 entity, as returned by [`decode`].
///
/// `Debug` never shows the secret key of [`Nip19Entity::Nsec`].
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Nip19Entity {
    /// `npub`: a public key.
    Npub(PublicKey),
    /// `nsec`: the 32 bytes of a secret key.
    Nsec([u8; 32]),
    /// `note`: an event id.
    Note(EventId),
    /// `nprofile`: a public key with relays.
    Nprofile(Nip19Profile),
    /// `nevent`: an event id with relays, author and kind.
    Nevent(Nip19Event),
    /// `naddr`: the coordinate of an addressable (or replaceable) event.
    Naddr {
        /// The `d` tag (TLV 0); empty for a normal replaceable event.
        identifier: String,
        /// The event's author (TLV 2, required).
        public_key: PublicKey,
        /// The event's kind (TLV 3, required).
        kind: Kind,
        /// Relay URLs, in order (TLV 1).
        relays: Vec<String>,
    },
}

impl Nip19Entity {
    /// The bech32 prefix of this entity: `"npub"`, `"nsec"`, `"note"`, `"nprofile"`,
    /// `"nevent"` or `"naddr"`.
    pub fn prefix(&self) -> &'static str {
        match self {
            Nip19Entity::Npub(_) => "npub",
            Nip19Entity::Nsec(_) => "nsec",
            Nip19Entity::Note(_) => "note",
            Nip19Entity::Nprofile(_) => "nprofile",
            Nip19Entity::Nevent(_) => "nevent",
            Nip19Entity::Naddr { .. } => "naddr",
        }
    }

    /// Encodes the entity back to its NIP-19 string. Fails only where the TLV encoders do
    /// (a value over 255 bytes, a non-ASCII relay, a string over [`MAX_LENGTH`]).
    pub fn encode(&self) -> Result<String> {
        match self {
            Nip19Entity::Npub(pk) => Ok(encode_npub(pk)),
            Nip19Entity::Nsec(sk) => Ok(encode_nsec(sk)),
            Nip19Entity::Note(id) => Ok(encode_note(id)),
            Nip19Entity::Nprofile(profile) => encode_nprofile(profile),
            Nip19Entity::Nevent(event) => encode_nevent(event),
            Nip19Entity::Naddr {
                identifier,
                public_key,
                kind,
                relays,
            } => encode_naddr(identifier, public_key, *kind, relays),
        }
    }
}

impl fmt::Debug for Nip19Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nip19Entity::Npub(pk) => f.debug_tuple("Npub").field(pk).finish(),
            Nip19Entity::Nsec(_) => f.write_str("Nsec(<redacted>)"),
            Nip19Entity::Note(id) => f.debug_tuple("Note").field(id).finish(),
            Nip19Entity::Nprofile(p) => f.debug_tuple("Nprofile").field(p).finish(),
            Nip19Entity::Nevent(e) => f.debug_tuple("Nevent").field(e).finish(),
            Nip19Entity::Naddr {
                identifier,
                public_key,
                kind,
                relays,
            } => f
                .debug_struct("Naddr")
                .field("identifier", identifier)
                .field("public_key", public_key)
                .field("kind", kind)
                .field("relays", relays)
                .finish(),
        }
    }
}

impl FromStr for Nip19Entity {
    type Err = Error;

    /// Same as [`decode`].
    fn from_str(s: &str) -> Result<Self> {
        decode(s)
    }
}

/// Encodes a public key as `npub1…`.
pub fn encode_npub(pk: &PublicKey) -> String {
    encode_32(NPUB, pk.as_bytes())
}

/// Decodes `npub1…` into a public key. The bytes are not checked to be a point on the curve.
pub fn decode_npub(s: &str) -> Result<PublicKey> {
    let data = decode_expecting(s, NPUB)?;
    bytes_32(&data, "public key").map(PublicKey::from_bytes)
}

/// Encodes secret key bytes as `nsec1…`.
pub fn encode_nsec(sk: &[u8; 32]) -> String {
    encode_32(NSEC, sk)
}

/// Decodes `nsec1…` into the 32 secret-key bytes. Whether they are a valid secp256k1 secret
/// key is checked by [`Keys`](super::Keys), not here.
pub fn decode_nsec(s: &str) -> Result<[u8; 32]> {
    let data = decode_expecting(s, NSEC)?;
    bytes_32(&data, "secret key")
}

/// Encodes an event id as `note1…`.
pub fn encode_note(id: &EventId) -> String {
    encode_32(NOTE, id.as_bytes())
}

/// Decodes `note1…` into an event id.
pub fn decode_note(s: &str) -> Result<EventId> {
    let data = decode_expecting(s, NOTE)?;
    bytes_32(&data, "event id").map(EventId::from_bytes)
}

/// Encodes a profile as `nprofile1…`: TLV 0 the public key, then one TLV 1 per relay.
///
/// Fails if a relay is not ASCII or longer than 255 bytes, or the result would be longer than
/// [`MAX_LENGTH`].
pub fn encode_nprofile(profile: &Nip19Profile) -> Result<String> {
    let mut tlv = TlvWriter::default();
    tlv.push(TLV_SPECIAL, profile.public_key.as_bytes(), "public key")?;
    tlv.push_relays(&profile.relays)?;
    tlv.finish(NPROFILE)
}

/// Decodes `nprofile1…`. The public key (TLV 0) is required; relays may be absent.
pub fn decode_nprofile(s: &str) -> Result<Nip19Profile> {
    decode_nprofile_data(&decode_expecting(s, NPROFILE)?)
}

fn decode_nprofile_data(data: &[u8]) -> Result<Nip19Profile> {
    let tlvs = Tlvs::parse(data, "nprofile", false)?;
    let special = tlvs.require_special("nprofile", "public key")?;
    Ok(Nip19Profile {
        public_key: PublicKey::from_bytes(bytes_32(special, "public key TLV")?),
        relays: tlvs.relays,
    })
}

/// Encodes an event pointer as `nevent1…`: TLV 0 the id, TLV 1 per relay, then TLV 2 and TLV 3
/// when `author` and `kind` are set.
///
/// Fails if a relay is not ASCII or longer than 255 bytes, or the result would be longer than
/// [`MAX_LENGTH`].
pub fn encode_nevent(event: &Nip19Event) -> Result<String> {
    let mut tlv = TlvWriter::default();
    tlv.push(TLV_SPECIAL, event.id.as_bytes(), "event id")?;
    tlv.push_relays(&event.relays)?;
    if let Some(author) = &event.author {
        tlv.push(TLV_AUTHOR, author.as_bytes(), "author")?;
    }
    if let Some(kind) = event.kind {
        tlv.push(TLV_KIND, &u32::from(kind.as_u16()).to_be_bytes(), "kind")?;
    }
    tlv.finish(NEVENT)
}

/// Decodes `nevent1…`. The event id (TLV 0) is required; relays, author and kind are optional,
/// but an author that is not 32 bytes or a kind that is not 4 bytes is an error.
pub fn decode_nevent(s: &str) -> Result<Nip19Event> {
    decode_nevent_data(&decode_expecting(s, NEVENT)?)
}

fn decode_nevent_data(data: &[u8]) -> Result<Nip19Event> {
    let tlvs = Tlvs::parse(data, "nevent", true)?;
    let special = tlvs.require_special("nevent", "event id")?;
    Ok(Nip19Event {
        id: EventId::from_bytes(bytes_32(special, "event id TLV")?),
        author: tlvs.author()?,
        kind: tlvs.kind()?,
        relays: tlvs.relays,
    })
}

/// Encodes an addressable event coordinate as `naddr1…`: TLV 0 the identifier (written even
/// when empty), TLV 1 per relay, TLV 2 the author, TLV 3 the kind.
///
/// Fails if the identifier or a relay is longer than 255 bytes, a relay is not ASCII, or the
/// result would be longer than [`MAX_LENGTH`].
pub fn encode_naddr(
    identifier: &str,
    public_key: &PublicKey,
    kind: Kind,
    relays: &[String],
) -> Result<String> {
    let mut tlv = TlvWriter::default();
    tlv.push(TLV_SPECIAL, identifier.as_bytes(), "identifier")?;
    tlv.push_relays(relays)?;
    tlv.push(TLV_AUTHOR, public_key.as_bytes(), "author")?;
    tlv.push(TLV_KIND, &u32::from(kind.as_u16()).to_be_bytes(), "kind")?;
    tlv.finish(NADDR)
}

fn decode_naddr_data(data: &[u8]) -> Result<Nip19Entity> {
    let tlvs = Tlvs::parse(data, "naddr", true)?;
    let special = tlvs.require_special("naddr", "identifier")?;
    let identifier = std::str::from_utf8(special)
        .map_err(|_| nip19_error("naddr identifier (TLV 0) is not UTF-8"))?
        .to_owned();
    let public_key = tlvs
        .author()?
        .ok_or_else(|| nip19_error("naddr has no author (TLV 2), which it requires"))?;
    let kind = tlvs
        .kind()?
        .ok_or_else(|| nip19_error("naddr has no kind (TLV 3), which it requires"))?;
    Ok(Nip19Entity::Naddr {
        identifier,
        public_key,
        kind,
        relays: tlvs.relays,
    })
}

/// Decodes any NIP-19 string, choosing the entity by its prefix.
///
/// `ncryptsec` (NIP-49), the deprecated `nrelay` and unknown prefixes are errors.
pub fn decode(s: &str) -> Result<Nip19Entity> {
    let (hrp, data) = decode_bech32(s)?;
    match hrp.as_str() {
        "npub" => {
            bytes_32(&data, "public key").map(|b| Nip19Entity::Npub(PublicKey::from_bytes(b)))
        }
        "nsec" => bytes_32(&data, "secret key").map(Nip19Entity::Nsec),
        "note" => bytes_32(&data, "event id").map(|b| Nip19Entity::Note(EventId::from_bytes(b))),
        "nprofile" => decode_nprofile_data(&data).map(Nip19Entity::Nprofile),
        "nevent" => decode_nevent_data(&data).map(Nip19Entity::Nevent),
        "naddr" => decode_naddr_data(&data),
        "nrelay" => Err(nip19_error(
            "nrelay is deprecated by NIP-19 and not supported",
        )),
        "ncryptsec" => Err(nip19_error(
            "ncryptsec (a NIP-49 encrypted secret key) is not supported",
        )),
        other => Err(nip19_error(format!("unknown prefix {other:?}"))),
    }
}

fn nip19_error(msg: impl Into<String>) -> Error {
    Error::Nip19(msg.into())
}

/// Encodes 32 bytes, which can never exceed the length limit.
fn encode_32(hrp: Hrp, data: &[u8; 32]) -> String {
    bech32::encode_lower::<NostrBech32>(hrp, data)
        .expect("32 bytes encode to at most 70 characters, far below MAX_LENGTH")
}

fn bytes_32(data: &[u8], what: &str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(data).map_err(|_| {
        nip19_error(format!(
            "{what} must be 32 bytes, found {} bytes",
            data.len()
        ))
    })
}

/// Decodes and checks a bech32 string whose prefix must be `expected`.
fn decode_expecting(s: &str, expected: Hrp) -> Result<Vec<u8>> {
    let (hrp, data) = decode_bech32(s)?;
    if hrp.as_str() != expected.as_str() {
        return Err(nip19_error(format!(
            "expected {}, found {}",
            expected.as_str(),
            hrp
        )));
    }
    Ok(data)
}

/// Checks characters, case, length, checksum and padding; returns the lowercase prefix and the
/// data bytes.
fn decode_bech32(s: &str) -> Result<(String, Vec<u8>)> {
    // Reported here rather than by `bech32`, to give the position of the culprit: a look-alike
    // letter pasted from a chat is the most common way these strings break.
    if let Some((pos, c)) = s.char_indices().find(|&(_, c)| !matches!(c, '!'..='~')) {
        return Err(nip19_error(format!(
            "character {c:?} (U+{:04X}) at byte {pos} is outside US-ASCII 33..126",
            u32::from(c)
        )));
    }
    if s.len() > MAX_LENGTH {
        return Err(nip19_error(format!(
            "{} characters, more than NIP-19's limit of {MAX_LENGTH}",
            s.len()
        )));
    }
    // `bech32` would first complain about a prefix letter such as 'b', which is no help.
    if !s.contains('1') {
        return Err(nip19_error("no separator '1' between prefix and data"));
    }
    let unchecked = UncheckedHrpstring::new(s).map_err(parse_error)?;
    let hrp = unchecked.hrp().to_lowercase();
    if let Err(e) = unchecked.validate_checksum::<NostrBech32>() {
        return Err(match e {
            ChecksumError::InvalidResidue if unchecked.has_valid_checksum::<Bech32m>() => {
                nip19_error("bech32m checksum; NIP-19 uses bech32")
            }
            ChecksumError::InvalidResidue => nip19_error("bad checksum"),
            ChecksumError::InvalidLength => nip19_error("too short to hold a checksum"),
            other => nip19_error(format!("bad checksum: {other}")),
        });
    }
    let checked = unchecked.remove_checksum::<NostrBech32>();
    checked
        .validate_segwit_padding()
        .map_err(|e| nip19_error(format!("bad padding: {e}")))?;
    Ok((hrp, checked.byte_iter().collect()))
}

fn parse_error(e: UncheckedHrpstringError) -> Error {
    match e {
        UncheckedHrpstringError::Char(CharError::MixedCase) => {
            nip19_error("mixed upper and lower case")
        }
        UncheckedHrpstringError::Char(CharError::MissingSeparator) => {
            nip19_error("no separator '1' between prefix and data")
        }
        UncheckedHrpstringError::Char(CharError::NothingAfterSeparator) => {
            nip19_error("no data after the separator '1'")
        }
        UncheckedHrpstringError::Char(CharError::InvalidChar(c)) => nip19_error(format!(
            "{c:?} is not a bech32 character (the data part uses qpzry9x8gf2tvdw0s3jn54khce6mua7l)"
        )),
        UncheckedHrpstringError::Hrp(e) => nip19_error(format!("invalid prefix: {e}")),
        other => nip19_error(other.to_string()),
    }
}

/// Builds TLV bytes.
#[derive(Default)]
struct TlvWriter(Vec<u8>);

impl TlvWriter {
    fn push(&mut self, ty: u8, value: &[u8], what: &str) -> Result<()> {
        let len = u8::try_from(value.len()).map_err(|_| {
            nip19_error(format!(
                "{what} is {} bytes; a TLV value holds at most 255",
                value.len()
            ))
        })?;
        self.0.push(ty);
        self.0.push(len);
        self.0.extend_from_slice(value);
        Ok(())
    }

    fn push_relays(&mut self, relays: &[String]) -> Result<()> {
        for relay in relays {
            if !relay.is_ascii() {
                return Err(nip19_error(format!("relay {relay:?} is not ASCII")));
            }
            self.push(TLV_RELAY, relay.as_bytes(), "relay URL")?;
        }
        Ok(())
    }

    fn finish(self, hrp: Hrp) -> Result<String> {
        bech32::encode_lower::<NostrBech32>(hrp, &self.0).map_err(|_| {
            nip19_error(format!(
                "{} would be longer than NIP-19's limit of {MAX_LENGTH} characters",
                hrp.as_str()
            ))
        })
    }
}

/// The known TLVs of one `nprofile`, `nevent` or `naddr`.
#[derive(Debug, Default)]
struct Tlvs<'a> {
    special: Option<&'a [u8]>,
    relays: Vec<String>,
    author: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
}

impl<'a> Tlvs<'a> {
    /// Splits `data` into records. Types 2 and 3 are read only when `author_and_kind` (they
    /// are undefined for `nprofile`); other unknown types are skipped, as NIP-19 requires.
    fn parse(data: &'a [u8], entity: &str, author_and_kind: bool) -> Result<Self> {
        let mut tlvs = Tlvs::default();
        let mut rest = data;
        while !rest.is_empty() {
            let offset = data.len() - rest.len();
            let [ty, len, tail @ ..] = rest else {
                return Err(nip19_error(format!(
                    "{entity} TLV truncated: header at byte {offset} needs 2 bytes, {} left",
                    rest.len()
                )));
            };
            let (value, after) = tail.split_at_checked(usize::from(*len)).ok_or_else(|| {
                nip19_error(format!(
                    "{entity} TLV truncated: type {ty} at byte {offset} declares {len} bytes, {} left",
                    tail.len()
                ))
            })?;
            rest = after;
            let slot = match *ty {
                TLV_SPECIAL => &mut tlvs.special,
                TLV_RELAY => {
                    let relay = std::str::from_utf8(value)
                        .ok()
                        .filter(|r| r.is_ascii())
                        .ok_or_else(|| {
                            nip19_error(format!(
                                "{entity} relay (TLV 1) at byte {offset} is not ASCII"
                            ))
                        })?;
                    tlvs.relays.push(relay.to_owned());
                    continue;
                }
                TLV_AUTHOR if author_and_kind => &mut tlvs.author,
                TLV_KIND if author_and_kind => &mut tlvs.kind,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(nip19_error(format!(
                    "{entity} has TLV type {ty} twice (only relays may repeat)"
                )));
            }
        }
        Ok(tlvs)
    }

    fn require_special(&self, entity: &str, what: &str) -> Result<&'a [u8]> {
        self.special.ok_or_else(|| {
            nip19_error(format!("{entity} has no {what} (TLV 0), which it requires"))
        })
    }

    fn author(&self) -> Result<Option<PublicKey>> {
        self.author
            .map(|v| bytes_32(v, "author TLV").map(PublicKey::from_bytes))
            .transpose()
    }

    fn kind(&self) -> Result<Option<Kind>> {
        let Some(value) = self.kind else {
            return Ok(None);
        };
        let bytes = <[u8; 4]>::try_from(value).map_err(|_| {
            nip19_error(format!(
                "kind TLV must be 4 bytes, found {} bytes",
                value.len()
            ))
        })?;
        let kind = u32::from_be_bytes(bytes);
        let kind = u16::try_from(kind).map_err(|_| {
            nip19_error(format!(
                "kind {kind} is out of range (NIP-01 kinds are 0..=65535)"
            ))
        })?;
        Ok(Some(Kind::new(kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nostr_bech32_constants_are_consistent() {
        NostrBech32::sanity_check();
    }

    #[test]
    fn tlv_parser_reports_truncation_and_skips_unknown_types() {
        let err = Tlvs::parse(&[0], "nevent", true).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = Tlvs::parse(&[0, 5, 1, 2], "nevent", true).unwrap_err();
        assert!(
            err.to_string().contains("declares 5 bytes, 2 left"),
            "{err}"
        );
        let tlvs = Tlvs::parse(&[9, 2, 1, 2, 0, 1, 7], "nevent", true).unwrap();
        assert_eq!(tlvs.special, Some(&[7][..]));
        // Types 2 and 3 mean nothing in an nprofile: skipped, even when repeated.
        let tlvs = Tlvs::parse(&[2, 1, 0, 2, 1, 0], "nprofile", false).unwrap();
        assert!(tlvs.author.is_none());
        let err = Tlvs::parse(&[2, 1, 0, 2, 1, 0], "nevent", true).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn kind_tlv_must_fit_nip01_range() {
        let tlvs = Tlvs {
            kind: Some(&[0, 1, 0, 0]),
            ..Tlvs::default()
        };
        assert!(tlvs.kind().unwrap_err().to_string().contains("65536"));
        let tlvs = Tlvs {
            kind: Some(&[0, 0, 0x75, 0x47]),
            ..Tlvs::default()
        };
        assert_eq!(tlvs.kind().unwrap(), Some(Kind::new(30023)));
    }

    #[test]
    fn long_strings_up_to_the_nip19_limit_round_trip() {
        let data = vec![0xabu8; 700]; // 1120 data characters, past bech32's usual 1023
        let s = bech32::encode_lower::<NostrBech32>(NEVENT, &data).unwrap();
        assert!(s.len() > 1023);
        let (hrp, back) = decode_bech32(&s).unwrap();
        assert_eq!((hrp.as_str(), back), ("nevent", data));
    }
}
