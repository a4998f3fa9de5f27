//! A hand-written reader for the frame that arrives by the hundred thousand:
//! `["EVENT", <subscription id>, <event>]`, for the event object inside it, and for a
//! client's publish, `["EVENT", <event>]` (what `TestRelay` reads).
//!
//! The derived serde parser spends most of an EVENT frame's ~8,500 instructions in generic
//! machinery: a visitor per field, an escape scan over the 256 hex characters of the id, key
//! and signature before they are decoded, `Cow` keys. This reader knows the shape: it decodes
//! hex fields in place, scans only free text for escapes, and builds the [`Event`] directly.
//!
//! It reads what relays actually send — any key order, any JSON whitespace, every JSON escape
//! in strings (surrogate pairs included) — and gives up, returning `None`, on anything else:
//! unknown or repeated keys, escapes in keys, ids or the subscription id, numbers with a sign,
//! a fraction, an exponent or a leading zero, lone surrogates, extra array elements, and every
//! syntax error. The caller then parses the text with serde_json, so every unusual frame and
//! every error goes through exactly one parser, the derived one, and the two agree wherever
//! this one answers (tested below against serde_json on the shared test data and on thousands
//! of mutations of it).

use super::event::{find_escape, Event};
use super::hex;
use super::ids::{EventId, PublicKey, Signature};
use super::kind::Kind;
use super::message::{RelayFrame, SubscriptionId};
use super::tag::Tag;
use super::timestamp::Timestamp;

/// `["EVENT", <subscription id>, <event>]` read by hand, or `None`: parse it with serde_json.
pub(crate) fn event_frame(text: &str) -> Option<RelayFrame> {
    let (subscription_id, event) = event_frame_parts(text)?;
    Some(RelayFrame::Event {
        subscription_id: SubscriptionId::from(subscription_id),
        event: Box::new(event),
    })
}

/// [`event_frame`] with the subscription id borrowed from the text: a connection looks it up
/// among its subscriptions and hands out the id it already holds, so no string is made per
/// event.
pub(crate) fn event_frame_parts(text: &str) -> Option<(&str, Event)> {
    event_array(text, |r| {
        let subscription_id = r.plain_str()?;
        r.eat(b',')?;
        Some((subscription_id, r.event()?))
    })
}

/// `["EVENT", <event>]`, a client's publish, read by hand (the event only), or `None`: parse
/// it with serde_json.
pub(crate) fn client_event(text: &str) -> Option<Event> {
    event_array(text, Reader::event)
}

/// `["EVENT", …]`, the whole text: `elements` reads what follows the verb and its comma, up
/// to the closing bracket.
fn event_array<'a, T>(
    text: &'a str,
    elements: impl FnOnce(&mut Reader<'a>) -> Option<T>,
) -> Option<T> {
    let mut r = Reader::new(text);
    r.eat(b'[')?;
    if r.plain_str()? != "EVENT" {
        return None;
    }
    r.eat(b',')?;
    let value = elements(&mut r)?;
    r.eat(b']')?;
    r.end()?;
    Some(value)
}

/// An event object read by hand, or `None`: parse it with serde_json.
pub(crate) fn event(text: &str) -> Option<Event> {
    let mut r = Reader::new(text);
    let event = r.event()?;
    r.end()?;
    Some(event)
}

/// Index of the first `"`, `\` or control character (below U+0020) at or after `from`, or
/// `bytes.len()`: the bytes JSON requires to be escaped, found as the serializer finds them.
fn scan(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    find_escape(rest).map_or(bytes.len(), |i| from + i)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// Skips JSON whitespace and returns the next byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Skips whitespace and consumes `byte`.
    fn eat(&mut self, byte: u8) -> Option<()> {
        if self.peek()? != byte {
            return None;
        }
        self.pos += 1;
        Some(())
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Option<()> {
        match self.peek() {
            None => Some(()),
            Some(_) => None,
        }
    }

    /// After an element: `,` (more follow, true) or `close` (the end, false).
    fn next_or(&mut self, close: u8) -> Option<bool> {
        let b = self.peek()?;
        self.pos += 1;
        match b {
            b',' => Some(true),
            _ if b == close => Some(false),
            _ => None,
        }
    }

    /// A string without escapes, borrowed from the text.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = scan(self.bytes, start);
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        // Both ends are ASCII bytes, so they are character boundaries.
        self.text.get(start..end)
    }

    /// Any string: runs between escapes are copied as they are, escapes decoded.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut run = self.pos;
        let mut unescaped: Option<String> = None;
        loop {
            let end = scan(self.bytes, run);
            let piece = self.text.get(run..end)?;
            match self.bytes.get(end)? {
                b'"' => {
                    self.pos = end + 1;
                    return Some(match unescaped {
                        None => piece.to_owned(),
                        Some(mut s) => {
                            s.push_str(piece);
                            s
                        }
                    });
                }
                b'\\' => {
                    let s = unescaped.get_or_insert_with(String::new);
                    s.push_str(piece);
                    let (c, next) = self.escape(end + 1)?;
                    s.push(c);
                    run = next;
                }
                // A raw control character: not JSON.
                _ => return None,
            }
        }
    }

    /// The character of the escape whose letter is at `at`, and the index after it.
    fn escape(&self, at: usize) -> Option<(char, usize)> {
        let c = match *self.bytes.get(at)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4(at + 1)?;
                if !(0xd800..0xdc00).contains(&unit) {
                    // A trailing surrogate on its own gives no char: serde_json decides.
                    return Some((char::from_u32(unit)?, at + 5));
                }
                // A leading surrogate: only a trailing one may follow.
                if self.bytes.get(at + 5..at + 7)? != b"\\u" {
                    return None;
                }
                let low = self.hex4(at + 7)?;
                if !(0xdc00..0xe000).contains(&low) {
                    return None;
                }
                let c = char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?;
                return Some((c, at + 11));
            }
            _ => return None,
        };
        Some((c, at + 1))
    }

    /// Four hex digits of a `\u` escape (either case, as JSON allows).
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        digits
            .iter()
            .try_fold(0u32, |acc, &d| Some(acc << 4 | char::from(d).to_digit(16)?))
    }

    /// `"<2N lowercase hex digits>"`, decoded.
    fn hex<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.eat(b'"')?;
        let end = self.pos + 2 * N;
        let out = hex::decode_slice::<N>(self.bytes.get(self.pos..end)?).ok()?;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        Some(out)
    }

    /// A non-negative integer without sign, fraction or exponent that fits in a u64.
    fn uint(&mut self) -> Option<u64> {
        self.peek()?;
        let start = self.pos;
        let mut value = 0u64;
        while let Some(&b) = self.bytes.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        let leading_zero = digits > 1 && self.bytes.get(start) == Some(&b'0');
        if digits == 0
            || leading_zero
            || matches!(self.bytes.get(self.pos), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some(value)
    }

    /// `[[<string>, ...], ...]`.
    fn tags(&mut self) -> Option<Vec<Tag>> {
        self.eat(b'[')?;
        let mut tags = Vec::new();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(tags);
        }
        loop {
            self.eat(b'[')?;
            let mut tag = Vec::new();
            if self.peek()? == b']' {
                self.pos += 1;
            } else {
                loop {
                    tag.push(self.string()?);
                    if !self.next_or(b']')? {
                        break;
                    }
                }
            }
            tags.push(Tag::from(tag));
            if !self.next_or(b']')? {
                return Some(tags);
            }
        }
    }

    /// The event object: the seven fields once each, in any order, nothing else.
    fn event(&mut self) -> Option<Event> {
        self.eat(b'{')?;
        let (mut id, mut pubkey, mut created_at, mut kind) = (None, None, None, None);
        let (mut tags, mut content, mut sig) = (None, None, None);
        loop {
            let key = self.plain_str()?;
            self.eat(b':')?;
            match key {
                "id" if id.is_none() => id = Some(self.hex::<32>()?),
                "pubkey" if pubkey.is_none() => pubkey = Some(self.hex::<32>()?),
                "created_at" if created_at.is_none() => created_at = Some(self.uint()?),
                "kind" if kind.is_none() => kind = Some(u16::try_from(self.uint()?).ok()?),
                "tags" if tags.is_none() => tags = Some(self.tags()?),
                "content" if content.is_none() => content = Some(self.string()?),
                "sig" if sig.is_none() => sig = Some(self.hex::<64>()?),
                // Unknown (serde_json skips it) or repeated (an error): not ours to judge.
                _ => return None,
            }
            if !self.next_or(b'}')? {
                break;
            }
        }
        Some(Event {
            id: EventId::from_bytes(id?),
            pubkey: PublicKey::from_bytes(pubkey?),
            created_at: Timestamp::from_secs(created_at?),
            kind: Kind::new(kind?),
            tags: tags?,
            content: content?,
            sig: Signature::from_bytes(sig?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::{serde_client_message, serde_relay_frame};
    use crate::protocol::{ClientMessage, InboundFrame};

    fn testdata(file: &str) -> Vec<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/");
        let text = std::fs::read_to_string(format!("{path}{file}")).expect("shared test data");
        // Split on \n only: some lines hold raw U+2028 inside strings.
        text.split('\n')
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn frame(event_json: &str) -> String {
        format!(r#"["EVENT","sub",{event_json}]"#)
    }

    /// Where the fast reader answers, serde_json gives the same frame; and the public parser
    /// and the connection's (`read_inbound`, the subscription id borrowed) always give what
    /// serde_json gives. Returns whether the fast reader answered.
    fn agrees(text: &str) -> bool {
        let slow = serde_relay_frame(text);
        let fast = event_frame(text);
        if let Some(fast) = &fast {
            assert_eq!(Ok(fast), slow.as_ref(), "fast reader disagrees on {text:?}");
        }
        assert_eq!(RelayFrame::from_json(text), slow, "on {text:?}");
        let inbound = RelayFrame::read_inbound(text.as_bytes()).map(|frame| match frame {
            InboundFrame::Event {
                subscription_id,
                event,
            } => RelayFrame::Event {
                subscription_id: SubscriptionId::from(subscription_id),
                event,
            },
            InboundFrame::Other(frame) => frame,
        });
        assert_eq!(inbound, slow, "read_inbound on {text:?}");
        // The same text without the subscription id is a client's publish (or its mutant).
        client_agrees(&text.replacen(r#""sub","#, "", 1));
        fast.is_some()
    }

    /// [`agrees`] for a client's message: the reader of publishes, where it answers, and
    /// `ClientMessage::from_json` always, give what serde_json gives. Returns whether the
    /// reader answered.
    fn client_agrees(text: &str) -> bool {
        let slow = serde_client_message(text);
        let fast = client_event(text);
        if let Some(fast) = &fast {
            let fast = ClientMessage::Event(Box::new(fast.clone()));
            assert_eq!(
                Ok(&fast),
                slow.as_ref(),
                "publish reader disagrees on {text:?}"
            );
        }
        assert_eq!(ClientMessage::from_json(text), slow, "on {text:?}");
        assert_eq!(
            ClientMessage::from_slice(text.as_bytes()),
            slow,
            "on {text:?}"
        );
        fast.is_some()
    }

    #[test]
    fn reads_every_real_and_reencoded_event_like_serde_json() {
        let mut files = 0;
        for file in [
            "events-real.jsonl",
            "events-synthetic-escapes.jsonl",
            "events-valid-reencoded.jsonl",
        ] {
            let lines = testdata(file);
            assert!(!lines.is_empty());
            for line in &lines {
                assert!(agrees(&frame(line)), "{file}: not read by hand: {line}");
                let publish = format!(r#"["EVENT",{line}]"#);
                assert!(client_agrees(&publish), "{file}: publish not read by hand");
                let fast = event(line).expect("the event object alone");
                assert_eq!(serde_json::from_str::<Event>(line).ok(), Some(fast));
            }
            files += 1;
        }
        assert_eq!(files, 3);
    }

    #[test]
    fn invalid_events_agree_with_serde_json() {
        let lines = testdata("events-invalid.jsonl");
        assert!(lines.len() >= 40);
        // The first 19 are well-formed events with a wrong id or signature: read by hand;
        // the structural defects after them are serde_json's to report.
        let read = lines.iter().filter(|line| agrees(&frame(line))).count();
        for line in &lines {
            if let Some(fast) = event(line) {
                assert_eq!(serde_json::from_str::<Event>(line).ok(), Some(fast));
            }
        }
        assert!((19..lines.len()).contains(&read), "{read} read by hand");
    }

    #[test]
    fn numbers_keys_and_escapes_at_the_edges() {
        let base: serde_json::Value =
            serde_json::from_str(&testdata("events-real.jsonl")[0]).expect("event");
        let with = |field: &str, raw: &str| -> String {
            let mut s = String::from("{");
            for (i, (k, v)) in base.as_object().expect("object").iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!("{k:?}:"));
                if k == field {
                    s.push_str(raw);
                } else {
                    s.push_str(&v.to_string());
                }
            }
            s.push('}');
            frame(&s)
        };
        let read = [
            ("created_at", "0"),
            ("created_at", "18446744073709551615"),
            ("created_at", " 7 "),
            ("kind", "65535"),
            ("content", r#""\u00e9\u00E9\/\b\f\n\r\t\"\\""#),
            ("content", r#""\ud83d\ude00 and \uD83D\uDE00""#),
            ("content", r#""\u0000""#),
            ("content", "\"\u{2028}\u{7f}é\""),
            ("tags", "[]"),
            ("tags", "[[]]"),
            ("tags", r#"[ [ "a" , "" ] , [ ] ]"#),
        ];
        for (field, raw) in read {
            assert!(agrees(&with(field, raw)), "{field}: {raw} not read by hand");
        }
        let left = [
            ("created_at", "00"),
            ("created_at", "01"),
            ("created_at", "-1"),
            ("created_at", "1.0"),
            ("created_at", "1e3"),
            ("created_at", "18446744073709551616"),
            ("created_at", "\"1\""),
            ("kind", "65536"),
            ("content", r#""\ud83d""#),
            ("content", r#""\ud83d\u0041""#),
            ("content", r#""\ude00""#),
            ("content", r#""\x""#),
            ("content", r#""\u12""#),
            ("content", "\"\u{1}\""),
            ("content", "\"open"),
            ("tags", "[[1]]"),
            ("tags", r#"[["a",]]"#),
            ("tags", r#"[["a"],]"#),
            ("tags", r#"["a"]"#),
            ("id", r#""\u0030""#),
        ];
        for (field, raw) in left {
            assert!(!agrees(&with(field, raw)), "{field}: {raw} read by hand");
        }
        let event = &testdata("events-real.jsonl")[0];
        let unusual = [
            format!(r#"["EVENT","sub",{event},1]"#),
            format!(r#"["EVENT","s\u0075b",{event}]"#),
            format!(r#"["\u0045VENT","sub",{event}]"#),
            format!(r#"["EVENT","sub",{event}] x"#),
            format!(r#"["EVENT","sub",{event}"#),
            r#"["EVENT","sub"]"#.to_owned(),
            format!(r#"["EVENT",{event}]"#),
            format!(
                r#"["EVENT","sub",{}]"#,
                event.replacen("{", r#"{"extra":1,"#, 1)
            ),
            format!(
                r#"["EVENT","sub",{}]"#,
                event.replacen("{", r#"{"id":"","#, 1)
            ),
            format!(
                r#"["EVENT","sub",{}]"#,
                event.replacen(r#""id""#, r#""\u0069d""#, 1)
            ),
            format!(r#"["EVENT","sub",{}]"#, event.replacen("}", ",}", 1)),
            r#"["EVENT","sub",{}]"#.to_owned(),
        ];
        for text in &unusual {
            assert!(!agrees(text), "read by hand: {text}");
        }
        assert!(agrees(&format!(
            " \n[ \"EVENT\" ,\t\"sub\" , {event} ] \r\n"
        )));
    }

    /// Random edits of real frames: bytes dropped, doubled or replaced by JSON's special
    /// characters. Wherever the fast reader answers, serde_json must give the same frame.
    #[test]
    fn mutated_frames_agree_with_serde_json() {
        const PIECES: &[&str] = &[
            "\"", "\\", ",", ":", "[", "]", "{", "}", " ", "\n", "0", "1", "9", "a", "f", "A", "-",
            ".", "e", "u", "\\u", "\\ud83d", "\\ude00", "\u{1}", "é", "\u{2028}", "null", "\"id\"",
            "\"x\"",
        ];
        let lines = testdata("events-real.jsonl");
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut tried, mut read) = (0, 0);
        for line in lines.iter().step_by(7).take(400) {
            let original = frame(line).into_bytes();
            for _ in 0..25 {
                let mut bytes = original.clone();
                for _ in 0..1 + next() % 3 {
                    let at = (next() % bytes.len() as u64) as usize;
                    match next() % 3 {
                        0 => {
                            bytes.remove(at);
                        }
                        1 => {
                            let b = bytes[at];
                            bytes.insert(at, b);
                        }
                        _ => {
                            let piece = PIECES[(next() % PIECES.len() as u64) as usize];
                            bytes.splice(at..at + 1, piece.bytes());
                        }
                    }
                }
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    tried += 1;
                    read += usize::from(agrees(text));
                } else {
                    let error = RelayFrame::from_slice(&bytes).expect_err("not UTF-8");
                    let inbound = RelayFrame::read_inbound(&bytes).map(|_| ());
                    assert_eq!(inbound, Err(error));
                }
            }
        }
        // The edits must both hit and miss: some mutants are still events the fast reader
        // reads (a changed content character), most are not.
        assert!(tried > 5_000, "{tried} mutants");
        assert!(
            read > tried / 20 && read < tried,
            "{read} of {tried} read by hand"
        );
    }

    #[test]
    fn scan_finds_the_first_special_byte_at_every_offset() {
        for len in 0..40 {
            for special in [b'"', b'\\', 0u8, 0x1f] {
                for filler in [b'a', 0x7f, 0xc3, b' '] {
                    let mut bytes = vec![filler; len];
                    bytes.push(special);
                    bytes.extend_from_slice(&[b'"'; 9]);
                    for from in 0..=len {
                        assert_eq!(scan(&bytes, from), len, "len {len} from {from}");
                    }
                }
            }
            assert_eq!(scan(&vec![b'x'; len], 0), len);
        }
    }
}
