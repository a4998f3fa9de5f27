//! Subscription filters (NIP-01).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::event::Event;
use super::ids::{EventId, PublicKey};
use super::kind::Kind;
use super::timestamp::Timestamp;

/// Which events a subscription asks for (NIP-01).
///
/// ```json
/// {"ids": [<event id>...], "authors": [<pubkey>...], "kinds": [<kind>...],
///  "#<single-letter>": [<tag value>...], "since": <ts>, "until": <ts>, "limit": <n>}
/// ```
///
/// Every field is optional; an event matches when it satisfies all fields present. A list
/// matches when the event's value is one of its entries, so a present but empty list matches
/// nothing. A `#x` list matches when the event has a tag named `x` whose first value is one
/// of the entries. `since <= created_at <= until`. `limit` only bounds a relay's initial
/// answer and plays no part in [`Filter::matches`]. Unknown keys are ignored when parsing.
///
/// ```
/// use actix_nostr::protocol::{Filter, Kind};
/// let filter = Filter::new().kind(Kind::TEXT_NOTE).tag('t', ["nostr"]).limit(10);
/// assert_eq!(filter.as_json(), r##"{"kinds":[1],"#t":["nostr"],"limit":10}"##);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    /// Exact event ids.
    pub ids: Option<Vec<EventId>>,
    /// Exact author public keys.
    pub authors: Option<Vec<PublicKey>>,
    /// Kinds.
    pub kinds: Option<Vec<Kind>>,
    /// Single-letter tag filters: `'e'` for `#e`, and so on.
    pub tags: BTreeMap<char, Vec<String>>,
    /// Oldest `created_at` wanted (inclusive).
    pub since: Option<Timestamp>,
    /// Newest `created_at` wanted (inclusive).
    pub until: Option<Timestamp>,
    /// At most this many stored events in the initial answer.
    pub limit: Option<u64>,
}

impl Filter {
    /// A filter that matches every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one event id.
    pub fn id(mut self, id: EventId) -> Self {
        self.ids.get_or_insert_with(Vec::new).push(id);
        self
    }

    /// Adds event ids.
    pub fn ids(mut self, ids: impl IntoIterator<Item = EventId>) -> Self {
        self.ids.get_or_insert_with(Vec::new).extend(ids);
        self
    }

    /// Adds one author.
    pub fn author(mut self, author: PublicKey) -> Self {
        self.authors.get_or_insert_with(Vec::new).push(author);
        self
    }

    /// Adds authors.
    pub fn authors(mut self, authors: impl IntoIterator<Item = PublicKey>) -> Self {
        self.authors.get_or_insert_with(Vec::new).extend(authors);
        self
    }

    /// Adds one kind.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kinds.get_or_insert_with(Vec::new).push(kind);
        self
    }

    /// Adds kinds.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = Kind>) -> Self {
        self.kinds.get_or_insert_with(Vec::new).extend(kinds);
        self
    }

    /// Adds values to the `#letter` tag filter.
    pub fn tag<I, S>(mut self, letter: char, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags
            .entry(letter)
            .or_default()
            .extend(values.into_iter().map(Into::into));
        self
    }

    /// `#p`: events that mention this public key.
    pub fn pubkey_ref(self, pubkey: &PublicKey) -> Self {
        self.tag('p', [pubkey.to_hex()])
    }

    /// `#e`: events that reference this event.
    pub fn event_ref(self, id: &EventId) -> Self {
        self.tag('e', [id.to_hex()])
    }

    /// Sets `since`.
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// Sets `until`.
    pub fn until(mut self, until: Timestamp) -> Self {
        self.until = Some(until);
        self
    }

    /// Sets `limit`.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `event` satisfies this filter (NIP-01; `limit` is ignored).
    pub fn matches(&self, event: &Event) -> bool {
        if let Some(ids) = &self.ids {
            if !ids.contains(&event.id) {
                return false;
            }
        }
        if let Some(authors) = &self.authors {
            if !authors.contains(&event.pubkey) {
                return false;
            }
        }
        if let Some(kinds) = &self.kinds {
            if !kinds.contains(&event.kind) {
                return false;
            }
        }
        if let Some(since) = self.since {
            if event.created_at < since {
                return false;
            }
        }
        if let Some(until) = self.until {
            if event.created_at > until {
                return false;
            }
        }
        self.tags.iter().all(|(letter, values)| {
            let mut name = [0u8; 4];
            let name = &*letter.encode_utf8(&mut name);
            event.tags.iter().any(|tag| {
                tag.name() == Some(name)
                    && tag.value().is_some_and(|v| values.iter().any(|x| x == v))
            })
        })
    }

    /// The filter as compact JSON.
    pub fn as_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(ids) = &self.ids {
            map.serialize_entry("ids", ids)?;
        }
        if let Some(authors) = &self.authors {
            map.serialize_entry("authors", authors)?;
        }
        if let Some(kinds) = &self.kinds {
            map.serialize_entry("kinds", kinds)?;
        }
        for (letter, values) in &self.tags {
            map.serialize_entry(&format!("#{letter}"), values)?;
        }
        if let Some(since) = &self.since {
            map.serialize_entry("since", since)?;
        }
        if let Some(until) = &self.until {
            map.serialize_entry("until", until)?;
        }
        if let Some(limit) = &self.limit {
            map.serialize_entry("limit", limit)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FilterVisitor;
        impl<'de> Visitor<'de> for FilterVisitor {
            type Value = Filter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a filter object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Filter, A::Error> {
                let mut filter = Filter::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "ids" => filter.ids = Some(map.next_value()?),
                        "authors" => filter.authors = Some(map.next_value()?),
                        "kinds" => filter.kinds = Some(map.next_value()?),
                        "since" => filter.since = Some(map.next_value()?),
                        "until" => filter.until = Some(map.next_value()?),
                        "limit" => filter.limit = Some(map.next_value()?),
                        k => {
                            let mut chars = k.chars();
                            match (chars.next(), chars.next(), chars.next()) {
                                (Some('#'), Some(letter), None) if letter.is_ascii_alphabetic() => {
                                    let values: Vec<String> = map.next_value()?;
                                    filter.tags.insert(letter, values);
                                }
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                    }
                }
                Ok(filter)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Filter, E> {
                Err(E::custom("a filter must be an object, not null"))
            }
        }
        deserializer.deserialize_map(FilterVisitor)
    }
}
