//! Signed events: the one data type of Nostr (NIP-01).

use std::cell::RefCell;

use secp256k1::{schnorr, XOnlyPublicKey};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::hex;
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
/// Parsing checks the *structure* (a JSON object, every field present, right JSON types,
/// lowercase hex of the right length, numbers in range; unknown fields are ignored). Whether
/// the id and signature are right is a separate, explicit step: [`Event::verify`].
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
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

/// The derived field-by-field parser of [`Event`], used only through its [`Deserialize`]
/// impl below. A derived `Deserialize` alone would also accept the seven values as a JSON
/// *array* in field order, which NIP-01 does not allow: an event is an object.
#[derive(Deserialize)]
#[serde(remote = "Event")]
struct EventObject {
    id: EventId,
    pubkey: PublicKey,
    created_at: Timestamp,
    kind: Kind,
    tags: Vec<Tag>,
    content: String,
    sig: Signature,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = Event;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Event, A::Error> {
                EventObject::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

thread_local! {
    /// Reused serialization buffer for id computation: the hot path allocates nothing.
    static ID_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));

    /// Public keys already lifted onto the curve, two per value of the key's first nine
    /// bits (see [`curve_point`]).
    /// Allocated on first use, so threads that never verify pay nothing.
    static CURVE_POINTS: RefCell<Vec<CurvePointSet>> =
        const { RefCell::new(Vec::new()) };
}

/// Sets of the per-thread cache of lifted public keys, two keys each: about 96 KiB per
/// thread. Two keys per set, the most recently used first: with one, authors whose keys
/// share the set evict each other on every alternation. Read once in file order, the real
/// event corpus finds its author's key there for 55.8 % of events (one key per set, 1,024
/// sets: 54.2 %; the most any cache could: 57.8 %); a stream from 64 random authors misses
/// 0.5 % of the time (one key per set: 3.9 %), from 400 authors 8.8 % (17.7 %).
const CURVE_POINT_SETS: usize = 512;

/// One set of the cache: the most recently used key first.
type CurvePointSet = [Option<(PublicKey, XOnlyPublicKey)>; 2];

/// The curve point of an x-only public key, [`Error::InvalidSignature`] if there is none.
///
/// Lifting x onto the curve takes a square root: about a tenth of a BIP-340 verification
/// (benches/protocol.rs, step (e) against (d)). A stream carries many events per author, so
/// the two keys last used for each value of the first nine bits are kept per thread. Keys are
/// random, so the first bytes spread them evenly; a key chosen to collide costs only the lift.
fn curve_point(pubkey: &PublicKey) -> Result<XOnlyPublicKey> {
    let bytes = pubkey.as_bytes();
    let set = (usize::from(bytes[0]) | usize::from(bytes[1]) << 8) % CURVE_POINT_SETS;
    CURVE_POINTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.is_empty() {
            cache.resize(CURVE_POINT_SETS, [None, None]);
        }
        let ways = &mut cache[set];
        match ways {
            [Some((cached, point)), _] if cached == pubkey => return Ok(*point),
            [_, Some((cached, point))] if cached == pubkey => {
                let point = *point;
                ways.swap(0, 1);
                return Ok(point);
            }
            _ => {}
        }
        let point = XOnlyPublicKey::from_byte_array(*pubkey.as_bytes())
            .map_err(|_| Error::InvalidSignature)?;
        ways[1] = ways[0].replace((*pubkey, point));
        Ok(point)
    })
}

impl Event {
    /// Parses an event object from JSON, checking its structure only.
    pub fn from_json(json: &str) -> Result<Self> {
        // Read by hand where it can be (see `event_scan`), else by the derived parser.
        match super::event_scan::event(json) {
            Some(event) => Ok(event),
            None => serde_json::from_str(json).map_err(Error::from_json),
        }
    }

    /// The event as compact JSON, byte for byte what `serde_json` writes for it (fields in
    /// the order of the struct).
    pub fn as_json(&self) -> String {
        let mut out = Vec::with_capacity(self.json_len_hint());
        self.write_json(&mut out);
        json_bytes_into_string(out)
    }

    /// Appends the event as compact JSON (see [`Event::as_json`]) to `out`.
    ///
    /// Written by hand rather than through `serde_json` because every publish serializes its
    /// event: strings are copied in runs between the rare bytes that need escaping (the same
    /// writer as the id's), where `serde_json` looks every byte up in its escape table, which
    /// was a quarter of the client's instructions per publish (benches/pool.rs, scenario 5).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":\"");
        write_hex(out, self.id.as_bytes());
        out.extend_from_slice(b"\",\"pubkey\":\"");
        write_hex(out, self.pubkey.as_bytes());
        out.extend_from_slice(b"\",\"created_at\":");
        write_decimal(out, self.created_at.as_secs());
        out.extend_from_slice(b",\"kind\":");
        write_decimal(out, u64::from(self.kind.as_u16()));
        out.extend_from_slice(b",\"tags\":");
        write_tags(out, &self.tags);
        out.extend_from_slice(b",\"content\":");
        write_json_string(out, &self.content);
        out.extend_from_slice(b",\"sig\":\"");
        write_hex(out, self.sig.as_bytes());
        out.extend_from_slice(b"\"}");
    }

    /// Bytes that [`Event::write_json`] writes when nothing needs escaping, plus some slack:
    /// one allocation in the common case.
    pub(crate) fn json_len_hint(&self) -> usize {
        let tags: usize = self
            .tags
            .iter()
            .map(|t| 2 + t.as_slice().iter().map(|e| e.len() + 3).sum::<usize>())
            .sum();
        // 64 + 64 + 128 hex characters, the keys and punctuation (~70), two numbers (≤ 25).
        self.content.len() + tags + 384
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
        let pubkey = curve_point(&self.pubkey)?;
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
        write_id_serialization(&mut buf, pubkey, created_at, kind, tags, content);
        let digest: [u8; 32] = Sha256::digest(&buf[..]).into();
        if buf.capacity() > 1 << 20 {
            // Don't keep a huge buffer alive after one huge event.
            *buf = Vec::with_capacity(1024);
        }
        EventId::from_bytes(digest)
    })
}

/// Appends the NIP-01 id serialization `[0,<pubkey>,<created_at>,<kind>,<tags>,<content>]`.
///
/// Byte for byte what `serde_json::to_writer` writes for the same tuple (the tests compare
/// the two), written by hand because this is on every received event's path: strings are
/// copied in runs between the rare bytes that need escaping, which are looked for 16 bytes
/// at a time, and hex and numbers skip the formatter. On the real-event corpus that takes
/// about a third off the serialization's time and half off its instructions; SHA-256 is
/// then the larger part of `compute_id`.
fn write_id_serialization(
    out: &mut Vec<u8>,
    pubkey: &PublicKey,
    created_at: Timestamp,
    kind: Kind,
    tags: &[Tag],
    content: &str,
) {
    out.extend_from_slice(b"[0,\"");
    write_hex(out, pubkey.as_bytes());
    out.extend_from_slice(b"\",");
    write_decimal(out, created_at.as_secs());
    out.push(b',');
    write_decimal(out, u64::from(kind.as_u16()));
    out.push(b',');
    write_tags(out, tags);
    out.push(b',');
    write_json_string(out, content);
    out.push(b']');
}

/// Appends the tags as a JSON array of arrays of strings.
fn write_tags(out: &mut Vec<u8>, tags: &[Tag]) {
    out.push(b'[');
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, element) in tag.as_slice().iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_json_string(out, element);
        }
        out.push(b']');
    }
    out.push(b']');
}

/// Appends the lowercase hex of `bytes` (at most 64 bytes: ids, keys, signatures).
fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut buf = [0u8; 128];
    let hex = &mut buf[..2 * bytes.len()];
    hex::encode_into(bytes, hex);
    out.extend_from_slice(hex);
}

/// The JSON that the writers of this module produced, as a `String`. They copy strings
/// only in runs that end before an ASCII byte (always a character boundary) and add only
/// ASCII, so the bytes are always UTF-8; the lossy branch is never taken.
pub(crate) fn json_bytes_into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Whether JSON (and so NIP-01) requires `b` to be escaped inside a string.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Bytes examined at once when looking for the next byte to escape.
const ESCAPE_SCAN_CHUNK: usize = 32;
/// Bytes examined at once in what is left after the last whole chunk.
const ESCAPE_SCAN_WORD: usize = 8;

/// Zero exactly when JSON requires `b` to be escaped: `b ^ '"'` is zero only for a quote,
/// `b ^ '\\'` only for a backslash, `b - 0x1f` (saturating) only for bytes up to 0x1f.
/// Written with `min` and `saturating_sub`, the check of a chunk compiles to a few SIMD
/// instructions per 16 bytes (`pminub`, `psubusb`, `pcmpeqb`) with no branch per byte.
#[inline(always)]
fn escape_key(b: u8) -> u8 {
    (b ^ b'"').min(b ^ b'\\').min(b.saturating_sub(0x1f))
}

/// Whether any byte of `chunk` must be escaped, with no early exit inside the chunk.
#[inline(always)]
fn any_escape(chunk: &[u8]) -> bool {
    chunk
        .iter()
        .fold(0u8, |any, &b| any | u8::from(escape_key(b) == 0))
        != 0
}

/// The index of the first byte of `bytes` that must be escaped.
///
/// 32 bytes at a time, then 8, then one by one. Against the former 16-bytes-then-bytes loop:
/// about half the time on 450-byte plain contents (`benches/pool.rs`'s corpus; 4 % fewer
/// instructions per verify-off ingested event), about the same on the shared real events'
/// strings (35 bytes on average, many escapes).
#[inline]
pub(super) fn find_escape(bytes: &[u8]) -> Option<usize> {
    let first_in = |chunk: &[u8], base: usize| {
        chunk
            .iter()
            .position(|&b| needs_escape(b))
            .map(|i| base + i)
    };
    let mut chunks = bytes.chunks_exact(ESCAPE_SCAN_CHUNK);
    let mut base = 0;
    for chunk in &mut chunks {
        if any_escape(chunk) {
            return first_in(chunk, base);
        }
        base += ESCAPE_SCAN_CHUNK;
    }
    let mut words = chunks.remainder().chunks_exact(ESCAPE_SCAN_WORD);
    for word in &mut words {
        if any_escape(word) {
            return first_in(word, base);
        }
        base += ESCAPE_SCAN_WORD;
    }
    first_in(words.remainder(), base)
}

/// Appends `s` as a JSON string: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, the other
/// control characters as `\u00xx` with lowercase hex, everything else as it is.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(offset) = find_escape(&bytes[start..]) {
        let at = start + offset;
        out.extend_from_slice(&bytes[start..at]);
        let short = match bytes[at] {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            other => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let (hi, lo) = (HEX[usize::from(other >> 4)], HEX[usize::from(other & 0xf)]);
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
                start = at + 1;
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', short]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position of every length up to two chunks, two words and
    /// some: the chunked scan finds what a byte-by-byte one finds.
    #[test]
    fn find_escape_finds_the_first_byte_to_escape() {
        for len in 0..=2 * ESCAPE_SCAN_CHUNK + 2 * ESCAPE_SCAN_WORD + 3 {
            let clean = vec![b'a'; len];
            assert_eq!(find_escape(&clean), None, "len {len}");
            for pos in 0..len {
                for byte in 0..=u8::MAX {
                    let mut bytes = clean.clone();
                    bytes[pos] = byte;
                    let expected = bytes.iter().position(|&b| needs_escape(b));
                    assert_eq!(
                        find_escape(&bytes),
                        expected,
                        "len {len}, byte {byte:#x} at {pos}"
                    );
                }
            }
        }
        // The first of several.
        let mut bytes = vec![b'a'; 100];
        bytes[70] = b'"';
        bytes[40] = b'\\';
        bytes[90] = 0x01;
        assert_eq!(find_escape(&bytes), Some(40));
    }

    #[test]
    fn serialization_escapes_like_nip01() {
        let mut buf = Vec::new();
        let content = "a\nb\"c\\d\re\tf\u{8}g\u{c}h\u{0}\u{1f}\u{7f}\u{2028}é🤙/";
        serde_json::to_writer(&mut buf, &content).expect("writes");
        let expected = "\"a\\nb\\\"c\\\\d\\re\\tf\\bg\\fh\\u0000\\u001f\u{7f}\u{2028}é🤙/\"";
        assert_eq!(String::from_utf8(buf).expect("utf8"), expected);
        let mut ours = Vec::new();
        write_json_string(&mut ours, content);
        assert_eq!(String::from_utf8(ours).expect("utf8"), expected);
    }

    /// The hand-written id serialization against `serde_json` on the same tuple.
    fn assert_same_as_serde_json(created_at: u64, kind: u16, tags: &[Tag], content: &str) {
        let pubkey = PublicKey::from_bytes([0xa7; 32]);
        let (created_at, kind) = (Timestamp::from_secs(created_at), Kind::new(kind));
        let expected = serde_json::to_vec(&(0u8, &pubkey, created_at, kind, tags, content))
            .expect("serializes");
        let mut ours = Vec::new();
        write_id_serialization(&mut ours, &pubkey, created_at, kind, tags, content);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&expected)
        );
        let digest: [u8; 32] = Sha256::digest(&expected).into();
        assert_eq!(
            compute_id(&pubkey, created_at, kind, tags, content),
            EventId::from_bytes(digest)
        );
    }

    #[test]
    fn cached_curve_points_never_stand_in_for_another_key() {
        use crate::protocol::{EventBuilder, Keys};
        // Three keys that share a cache set (two ways: one always has to go), and an x in
        // the same set that is not on the curve.
        let set = |k: &PublicKey| {
            let b = k.as_bytes();
            (usize::from(b[0]) | usize::from(b[1]) << 8) % CURVE_POINT_SETS
        };
        let a = Keys::generate();
        let mut keys = vec![a];
        while keys.len() < 3 {
            let k = Keys::generate();
            if set(&k.public_key()) == set(&keys[0].public_key()) {
                keys.push(k);
            }
        }
        // An x in the same set that has no point on the curve (half of all x).
        let mut off_curve = [0u8; 32];
        off_curve[..2].copy_from_slice(&keys[0].public_key().as_bytes()[..2]);
        let off_curve = (0..=255u8)
            .map(|i| {
                off_curve[30] = i;
                PublicKey::from_bytes(off_curve)
            })
            .find(|pk| XOnlyPublicKey::from_byte_array(*pk.as_bytes()).is_err())
            .expect("half of all x have no point");
        assert_eq!(set(&off_curve), set(&keys[0].public_key()));

        let signed: Vec<Event> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| EventBuilder::text_note(format!("{i}")).sign(k))
            .collect();
        // Each event's id and signature with the next key: never valid.
        let claims: Vec<Event> = (0..3)
            .map(|i| Event {
                pubkey: keys[(i + 1) % 3].public_key(),
                ..signed[i].clone()
            })
            .collect();
        let off = Event {
            pubkey: off_curve,
            ..signed[0].clone()
        };
        // Orders that hit the first way, the second (which moves it first), and evict.
        for i in [0, 1, 0, 2, 2, 1, 0, 1, 2, 0, 0, 2, 1, 1] {
            assert_eq!(signed[i].verify_signature(), Ok(()), "key {i}");
            assert_eq!(
                claims[i].verify_signature(),
                Err(Error::InvalidSignature),
                "claim {i}"
            );
            assert_eq!(off.verify_signature(), Err(Error::InvalidSignature));
        }
    }

    /// `Event::as_json` (hand-written) against `serde_json` (derived) on every event of the
    /// shared test data (real events, synthetic escapes, re-encoded ones) and on contents
    /// and tags with every character below U+0100 at every offset of the scan chunks.
    #[test]
    fn event_json_matches_serde_json() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata");
        let mut events = Vec::new();
        for file in [
            "events-real.jsonl",
            "events-synthetic-escapes.jsonl",
            "events-valid-reencoded.jsonl",
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("test data");
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if let Ok(event) = Event::from_json(line) {
                    events.push(event);
                }
            }
        }
        assert!(events.len() > 100, "only {} events read", events.len());
        let all: String = (0u32..0x100)
            .chain([0x2028, 0x2029, 0xfeff, 0x1f919])
            .filter_map(char::from_u32)
            .collect();
        let base = events[0].clone();
        for len in 0..40 {
            for c in ['"', '\\', '\n', '\u{0}', '\u{1f}', '\u{7f}', 'é', 'x'] {
                let mut s: String = "a".repeat(len);
                s.push(c);
                events.push(Event {
                    content: s.clone(),
                    tags: vec![Tag::new([s.as_str(), ""]), Tag::new(Vec::<String>::new())],
                    ..base.clone()
                });
            }
        }
        events.push(Event {
            content: all.repeat(2),
            tags: vec![Tag::new(["p", all.as_str()])],
            created_at: Timestamp::from_secs(u64::MAX),
            kind: Kind::new(u16::MAX),
            ..base
        });
        for event in &events {
            let expected = serde_json::to_string(event).expect("serializes");
            assert_eq!(event.as_json(), expected);
        }
    }

    #[test]
    fn id_serialization_matches_serde_json() {
        // Every character below U+0100, plus some beyond, at every offset within and across
        // the 16-byte scan chunks.
        let all: String = (0u32..0x100)
            .chain([0x2028, 0x2029, 0xfeff, 0x1f919])
            .filter_map(char::from_u32)
            .collect();
        for len in 0..40 {
            for c in ['"', '\\', '\n', '\u{0}', '\u{1f}', '\u{7f}', 'é', 'x'] {
                let mut s: String = "a".repeat(len);
                s.push(c);
                s.push_str(&"b".repeat(len % 17));
                assert_same_as_serde_json(1, 1, &[], &s);
            }
        }
        assert_same_as_serde_json(0, 0, &[], "");
        assert_same_as_serde_json(u64::MAX, u16::MAX, &[], &all);
        assert_same_as_serde_json(
            1_700_000_000,
            3,
            &[
                Tag::new(["p", all.as_str(), ""]),
                Tag::new(Vec::<String>::new()),
                Tag::new(["single"]),
                Tag::new(["e", "\"\\\u{8}\u{c}\u{b}", "x"]),
            ],
            &all.repeat(3),
        );
        for n in [9, 10, 99, 100, 12345, 4_294_967_296, 9_007_199_254_740_991] {
            assert_same_as_serde_json(n, (n % 65536) as u16, &[], "n");
        }
    }
}
