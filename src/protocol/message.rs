//! The messages of the wire: what a client sends ([`ClientMessage`]) and what a relay sends
//! ([`RelayFrame`]), as the JSON arrays of NIP-01, NIP-42 and NIP-45.
//!
//! Parsing reads the type string, then exactly the elements that type defines; extra trailing
//! elements are ignored (they are reserved for future extensions). Anything else — not JSON,
//! not an array, too few elements, wrong element types, bad hex, an unknown type — is a typed
//! [`Error`], never a panic.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::event::{json_bytes_into_string, Event};
use super::event_scan;
use super::filter::Filter;
use super::ids::EventId;

/// A subscription id: an arbitrary string chosen by the client, unique per connection
/// (NIP-01 allows up to 64 characters).
///
/// Cloning it is cheap (a shared string): every event a relay delivers carries its
/// subscription's id, and the connection hands out clones of the id it subscribed with
/// instead of a new string per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(Arc<str>);

impl SubscriptionId {
    /// Wraps a string.
    pub fn new(id: impl Into<String>) -> Self {
        SubscriptionId(Arc::from(id.into()))
    }

    /// A random id of 16 hex characters.
    pub fn generate() -> Self {
        let bytes: [u8; 8] = rand::random();
        SubscriptionId::new(super::hex::encode(&bytes))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SubscriptionId {
    fn from(s: &str) -> Self {
        SubscriptionId(Arc::from(s))
    }
}

impl From<String> for SubscriptionId {
    fn from(s: String) -> Self {
        SubscriptionId::new(s)
    }
}

/// Lets maps keyed by subscription id be searched with the `&str` of a frame.
impl Borrow<str> for SubscriptionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for SubscriptionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SubscriptionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(SubscriptionIdVisitor)
    }
}

/// Copies the string once into the shared one (a `String` first would be a second copy).
struct SubscriptionIdVisitor;

impl Visitor<'_> for SubscriptionIdVisitor {
    type Value = SubscriptionId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> std::result::Result<SubscriptionId, E> {
        Ok(SubscriptionId::from(id))
    }

    /// UTF-8 bytes, as `String` takes them from formats that hand strings over as bytes.
    fn visit_bytes<E: de::Error>(self, id: &[u8]) -> std::result::Result<SubscriptionId, E> {
        std::str::from_utf8(id)
            .map(SubscriptionId::from)
            .map_err(|_| E::invalid_value(de::Unexpected::Bytes(id), &self))
    }
}

/// A message from a client to a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// `["EVENT", <event>]`: publish an event ([NIP-01]).
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Event(Box<Event>),
    /// `["REQ", <subscription id>, <filter>, <filter>...]`: ask for stored events, then
    /// live ones ([NIP-01]). At least one filter.
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Req {
        /// The subscription's id.
        subscription_id: SubscriptionId,
        /// Filters, OR'ed together.
        filters: Vec<Filter>,
    },
    /// `["CLOSE", <subscription id>]`: end a subscription ([NIP-01]).
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Close(SubscriptionId),
    /// `["AUTH", <signed kind-22242 event>]`: answer a relay's challenge ([NIP-42]).
    ///
    /// [NIP-42]: https://github.com/nostr-protocol/nips/blob/master/42.md
    Auth(Box<Event>),
    /// `["COUNT", <query id>, <filter>, <filter>...]`: ask how many events match
    /// ([NIP-45]). At least one filter.
    ///
    /// [NIP-45]: https://github.com/nostr-protocol/nips/blob/master/45.md
    Count {
        /// The query's id.
        subscription_id: SubscriptionId,
        /// Filters, OR'ed together.
        filters: Vec<Filter>,
    },
}

/// The answer of a NIP-45 `COUNT`: `{"count": <n>, "approximate": <bool>}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountResult {
    /// How many events match.
    pub count: u64,
    /// Whether the relay counted probabilistically. Absent on the wire means `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

/// A message from a relay to a client.
///
/// (Named `RelayFrame` so it does not clash with the actix message that users receive,
/// which carries the relay URL and connection events too.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayFrame {
    /// `["EVENT", <subscription id>, <event>]`: an event for a subscription ([NIP-01]).
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Event {
        /// The subscription it answers.
        subscription_id: SubscriptionId,
        /// The event, structurally valid but not yet verified.
        event: Box<Event>,
    },
    /// `["OK", <event id>, <true|false>, <message>]`: whether a published event was
    /// accepted ([NIP-01]). The message starts with a machine-readable prefix
    /// (`duplicate:`, `blocked:`, `rate-limited:`, `invalid:`, `auth-required:`, …).
    /// A missing message (some old relays) parses as `""`.
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Ok {
        /// The event this answers.
        event_id: EventId,
        /// Whether the relay accepted it.
        accepted: bool,
        /// Why, with a prefix.
        message: String,
    },
    /// `["EOSE", <subscription id>]`: end of stored events; live events follow ([NIP-01]).
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Eose(SubscriptionId),
    /// `["CLOSED", <subscription id>, <message>]`: the relay ended a subscription
    /// ([NIP-01]); the message has a prefix such as `auth-required:` or `error:`.
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Closed {
        /// The subscription that ended.
        subscription_id: SubscriptionId,
        /// Why.
        message: String,
    },
    /// `["NOTICE", <message>]`: human-readable text from the relay ([NIP-01]).
    ///
    /// [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
    Notice(String),
    /// `["AUTH", <challenge>]`: the relay asks the client to authenticate ([NIP-42]).
    ///
    /// [NIP-42]: https://github.com/nostr-protocol/nips/blob/master/42.md
    Auth {
        /// The string to sign into a kind-22242 event.
        challenge: String,
    },
    /// `["COUNT", <query id>, {"count": <n>}]`: the answer to a COUNT ([NIP-45]).
    ///
    /// [NIP-45]: https://github.com/nostr-protocol/nips/blob/master/45.md
    Count {
        /// The query it answers.
        subscription_id: SubscriptionId,
        /// The count.
        result: CountResult,
    },
}

fn malformed(what: &str) -> Error {
    Error::Malformed(what.to_owned())
}

/// Reads the next element or reports that it is missing.
fn required<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    missing: &'static str,
) -> std::result::Result<std::result::Result<T, Error>, A::Error> {
    Ok(seq.next_element::<T>()?.ok_or_else(|| malformed(missing)))
}

/// Reads the remaining elements (filters) of a REQ or COUNT.
fn filters<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    verb: &'static str,
) -> std::result::Result<std::result::Result<Vec<Filter>, Error>, A::Error> {
    let mut filters = Vec::new();
    while let Some(f) = seq.next_element::<Filter>()? {
        filters.push(f);
    }
    if filters.is_empty() {
        return Ok(Err(Error::Malformed(format!(
            "{verb} needs at least one filter"
        ))));
    }
    Ok(Ok(filters))
}

fn drain<'de, A: SeqAccess<'de>>(seq: &mut A) -> std::result::Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A message array parsed into `Ok(message)` or a typed [`Error`] about its content; serde
/// errors (syntax, types) travel separately and are classified by [`Error::from_json`].
struct Parsed<T>(std::result::Result<T, Error>);

trait ParseSeq: Sized {
    const EXPECTING: &'static str;
    fn parse_seq<'de, A: SeqAccess<'de>>(
        verb: &str,
        seq: &mut A,
    ) -> std::result::Result<std::result::Result<Self, Error>, A::Error>;
}

impl<'de, T: ParseSeq> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct SeqVisitor<T>(PhantomData<T>);
        impl<'de, T: ParseSeq> Visitor<'de> for SeqVisitor<T> {
            type Value = Parsed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Parsed<T>, A::Error> {
                let Some(verb) = seq.next_element::<Cow<'de, str>>()? else {
                    return Ok(Parsed(Err(malformed("empty message array"))));
                };
                let out = T::parse_seq(&verb, &mut seq)?;
                drain(&mut seq)?;
                Ok(Parsed(out))
            }
        }
        deserializer.deserialize_seq(SeqVisitor(PhantomData))
    }
}

fn parse_str<T: ParseSeq>(json: &str) -> Result<T> {
    serde_json::from_str::<Parsed<T>>(json)
        .map_err(Error::from_json)?
        .0
}

/// The relay frame as the derived serde parser reads it: the reference for
/// `event_scan`'s tests and for the `event_scan` fuzz target (`--cfg fuzzing`, which
/// cargo-fuzz sets; never part of a normal build).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub fn serde_relay_frame(json: &str) -> Result<RelayFrame> {
    parse_str(json)
}

/// The client message as the derived serde parser reads it: the reference for the same
/// tests and fuzz target, on the client's side.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub fn serde_client_message(json: &str) -> Result<ClientMessage> {
    parse_str(json)
}

/// The text of a frame's bytes. The whole frame must be UTF-8 (RFC 6455 text frames, RFC 8259
/// JSON). Checking it first also covers the parts serde_json skips without looking (extra
/// trailing elements, the payload of an unknown message type, unknown keys), and is faster:
/// reading bytes, serde_json checks every string on its own, while one check of the whole
/// frame (fast on mostly-ASCII JSON) and then reading it as text parses real EVENT frames
/// about 8 % faster (benches/protocol.rs).
fn frame_text(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| Error::Json(format!("not UTF-8: {e}")))
}

impl ParseSeq for ClientMessage {
    const EXPECTING: &'static str = "a client message array such as [\"REQ\", ...]";
    fn parse_seq<'de, A: SeqAccess<'de>>(
        verb: &str,
        seq: &mut A,
    ) -> std::result::Result<std::result::Result<Self, Error>, A::Error> {
        Ok(match verb {
            "EVENT" => required::<Event, _>(seq, "EVENT needs an event")?
                .map(|e| ClientMessage::Event(Box::new(e))),
            "AUTH" => required::<Event, _>(seq, "AUTH needs a signed event")?
                .map(|e| ClientMessage::Auth(Box::new(e))),
            "CLOSE" => required(seq, "CLOSE needs a subscription id")?.map(ClientMessage::Close),
            "REQ" | "COUNT" => {
                let is_req = verb == "REQ";
                match required::<SubscriptionId, _>(seq, "REQ/COUNT needs a subscription id")? {
                    Err(e) => Err(e),
                    Ok(subscription_id) => {
                        filters(seq, if is_req { "REQ" } else { "COUNT" })?.map(|filters| {
                            if is_req {
                                ClientMessage::Req {
                                    subscription_id,
                                    filters,
                                }
                            } else {
                                ClientMessage::Count {
                                    subscription_id,
                                    filters,
                                }
                            }
                        })
                    }
                }
            }
            other => Err(Error::UnknownMessage(other.to_owned())),
        })
    }
}

impl ParseSeq for RelayFrame {
    const EXPECTING: &'static str = "a relay message array such as [\"EVENT\", ...]";
    fn parse_seq<'de, A: SeqAccess<'de>>(
        verb: &str,
        seq: &mut A,
    ) -> std::result::Result<std::result::Result<Self, Error>, A::Error> {
        Ok(match verb {
            "EVENT" => match required::<SubscriptionId, _>(seq, "EVENT needs a subscription id")? {
                Err(e) => Err(e),
                Ok(subscription_id) => {
                    required::<Event, _>(seq, "EVENT needs an event")?.map(|event| {
                        RelayFrame::Event {
                            subscription_id,
                            event: Box::new(event),
                        }
                    })
                }
            },
            "OK" => match required::<EventId, _>(seq, "OK needs an event id")? {
                Err(e) => Err(e),
                Ok(event_id) => match required::<bool, _>(seq, "OK needs true or false")? {
                    Err(e) => Err(e),
                    Ok(accepted) => {
                        let message = seq.next_element::<String>()?.unwrap_or_default();
                        Ok(RelayFrame::Ok {
                            event_id,
                            accepted,
                            message,
                        })
                    }
                },
            },
            "EOSE" => required(seq, "EOSE needs a subscription id")?.map(RelayFrame::Eose),
            "CLOSED" => match required::<SubscriptionId, _>(seq, "CLOSED needs a subscription id")?
            {
                Err(e) => Err(e),
                Ok(subscription_id) => {
                    // Some relays omit the reason; NIP-01 asks for one but "" says the same.
                    let message = seq.next_element::<String>()?.unwrap_or_default();
                    Ok(RelayFrame::Closed {
                        subscription_id,
                        message,
                    })
                }
            },
            "NOTICE" => required(seq, "NOTICE needs a message")?.map(RelayFrame::Notice),
            "AUTH" => required(seq, "AUTH needs a challenge")?
                .map(|challenge| RelayFrame::Auth { challenge }),
            "COUNT" => match required::<SubscriptionId, _>(seq, "COUNT needs a query id")? {
                Err(e) => Err(e),
                Ok(subscription_id) => required::<CountResult, _>(seq, "COUNT needs a result")?
                    .map(|result| RelayFrame::Count {
                        subscription_id,
                        result,
                    }),
            },
            other => Err(Error::UnknownMessage(other.to_owned())),
        })
    }
}

impl ClientMessage {
    /// Parses a client message from JSON text.
    pub fn from_json(json: &str) -> Result<Self> {
        // A publish, `["EVENT", <event>]`, is read by hand where it can be (the reader of
        // relays' EVENT frames); everything else, and every error, by serde_json.
        match event_scan::client_event(json) {
            Some(event) => Ok(ClientMessage::Event(Box::new(event))),
            None => parse_str(json),
        }
    }

    /// Parses a client message from the bytes of a text frame.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        // The whole frame must be UTF-8; see `frame_text`.
        Self::from_json(frame_text(bytes)?)
    }

    /// `["REQ", id, filters...]`.
    pub fn req(subscription_id: SubscriptionId, filters: Vec<Filter>) -> Self {
        ClientMessage::Req {
            subscription_id,
            filters,
        }
    }

    /// `["EVENT", event]`.
    pub fn event(event: Event) -> Self {
        ClientMessage::Event(Box::new(event))
    }

    /// The message as compact JSON.
    pub fn as_json(&self) -> String {
        match self {
            ClientMessage::Event(event) | ClientMessage::Auth(event) => {
                verb_and_event_json(self.verb(), event)
            }
            _ => serde_json::to_string(self).unwrap_or_default(),
        }
    }

    /// `["EVENT", event]` as compact JSON, the same text as
    /// `ClientMessage::Event(event).as_json()` without moving or cloning the event into a
    /// message first.
    ///
    /// ```
    /// use actix_nostr::protocol::{ClientMessage, EventBuilder, Keys};
    ///
    /// let event = EventBuilder::text_note("hi").sign(&Keys::generate());
    /// let json = ClientMessage::event_json(&event);
    /// assert_eq!(json, ClientMessage::event(event).as_json());
    /// ```
    pub fn event_json(event: &Event) -> String {
        verb_and_event_json("EVENT", event)
    }

    /// The message's type string: `"EVENT"`, `"REQ"`, …
    pub fn verb(&self) -> &'static str {
        match self {
            ClientMessage::Event(_) => "EVENT",
            ClientMessage::Req { .. } => "REQ",
            ClientMessage::Close(_) => "CLOSE",
            ClientMessage::Auth(_) => "AUTH",
            ClientMessage::Count { .. } => "COUNT",
        }
    }
}

/// `["<verb>",<event>]`, through the event's own writer ([`Event::as_json`]).
fn verb_and_event_json(verb: &str, event: &Event) -> String {
    let mut out = Vec::with_capacity(event.json_len_hint() + verb.len() + 5);
    out.extend_from_slice(b"[\"");
    out.extend_from_slice(verb.as_bytes());
    out.extend_from_slice(b"\",");
    event.write_json(&mut out);
    out.push(b']');
    json_bytes_into_string(out)
}

/// A relay frame as a connection reads it: [`RelayFrame::read_inbound`].
#[derive(Debug)]
pub(crate) enum InboundFrame<'a> {
    /// `["EVENT", <subscription id>, <event>]`, the id still in the frame.
    Event {
        subscription_id: &'a str,
        event: Box<Event>,
    },
    /// Any other frame (or an EVENT frame the fast reader left to serde_json).
    Other(RelayFrame),
}

impl RelayFrame {
    /// Parses a relay message from JSON text.
    pub fn from_json(json: &str) -> Result<Self> {
        // EVENT frames, the hot ones, are read by hand where they can be; everything else
        // (other messages, unusual spellings, every error) by serde_json.
        event_scan::event_frame(json).map_or_else(|| parse_str(json), Ok)
    }

    /// Parses a relay message from the bytes of a text frame.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        // The whole frame must be UTF-8; see `frame_text`.
        Self::from_json(frame_text(bytes)?)
    }

    /// [`RelayFrame::from_slice`] for a connection: an `EVENT` frame read by hand comes with
    /// its subscription id borrowed from the frame (see [`InboundFrame`]). The same frames
    /// parse, to the same values, with the same errors.
    pub(crate) fn read_inbound(bytes: &[u8]) -> Result<InboundFrame<'_>> {
        let text = frame_text(bytes)?;
        match event_scan::event_frame_parts(text) {
            Some((subscription_id, event)) => Ok(InboundFrame::Event {
                subscription_id,
                event: Box::new(event),
            }),
            None => parse_str(text).map(InboundFrame::Other),
        }
    }

    /// The message as compact JSON.
    pub fn as_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The message's type string: `"EVENT"`, `"OK"`, …
    pub fn verb(&self) -> &'static str {
        match self {
            RelayFrame::Event { .. } => "EVENT",
            RelayFrame::Ok { .. } => "OK",
            RelayFrame::Eose(_) => "EOSE",
            RelayFrame::Closed { .. } => "CLOSED",
            RelayFrame::Notice(_) => "NOTICE",
            RelayFrame::Auth { .. } => "AUTH",
            RelayFrame::Count { .. } => "COUNT",
        }
    }
}

impl Serialize for ClientMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(self.verb())?;
        match self {
            ClientMessage::Event(event) | ClientMessage::Auth(event) => {
                seq.serialize_element(event)?
            }
            ClientMessage::Close(id) => seq.serialize_element(id)?,
            ClientMessage::Req {
                subscription_id,
                filters,
            }
            | ClientMessage::Count {
                subscription_id,
                filters,
            } => {
                seq.serialize_element(subscription_id)?;
                for f in filters {
                    seq.serialize_element(f)?;
                }
            }
        }
        seq.end()
    }
}

impl Serialize for RelayFrame {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(self.verb())?;
        match self {
            RelayFrame::Event {
                subscription_id,
                event,
            } => {
                seq.serialize_element(subscription_id)?;
                seq.serialize_element(event)?;
            }
            RelayFrame::Ok {
                event_id,
                accepted,
                message,
            } => {
                seq.serialize_element(event_id)?;
                seq.serialize_element(accepted)?;
                seq.serialize_element(message)?;
            }
            RelayFrame::Eose(id) => seq.serialize_element(id)?,
            RelayFrame::Closed {
                subscription_id,
                message,
            } => {
                seq.serialize_element(subscription_id)?;
                seq.serialize_element(message)?;
            }
            RelayFrame::Notice(message) => seq.serialize_element(message)?,
            RelayFrame::Auth { challenge } => seq.serialize_element(challenge)?,
            RelayFrame::Count {
                subscription_id,
                result,
            } => {
                seq.serialize_element(subscription_id)?;
                seq.serialize_element(&CountWire(result))?;
            }
        }
        seq.end()
    }
}

struct CountWire<'a>(&'a CountResult);

impl Serialize for CountWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("count", &self.0.count)?;
        if self.0.approximate {
            map.serialize_entry("approximate", &true)?;
        }
        map.end()
    }
}

macro_rules! deserialize_via_parsed {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Parsed::<$t>::deserialize(d)?.0.map_err(de::Error::custom)
            }
        }
    };
}
deserialize_via_parsed!(ClientMessage);
deserialize_via_parsed!(RelayFrame);
