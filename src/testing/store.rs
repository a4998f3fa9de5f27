//! The in-memory event store of the test relay, with NIP-01 storage rules.
//!
//! Pure code, no I/O: the session actor calls it under the relay's lock.
//!
//! * Regular kinds are all kept.
//! * Replaceable kinds (`0`, `3`, `10000..20000`) keep only the newest event per pubkey and
//!   kind; addressable kinds (`30000..40000`) the newest per pubkey, kind and `d` tag. With
//!   equal `created_at` the event with the lowest id wins (NIP-01).
//! * Ephemeral kinds (`20000..30000`) are never stored, only forwarded.
//!
//! Queries answer newest first (ties: lowest id first), at most `limit` events per filter,
//! without duplicates across filters.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::protocol::{Event, EventId, Filter, Kind, PublicKey, Timestamp};

/// An event as stored: the event and its JSON, serialized once so that answering a REQ or
/// broadcasting never re-serializes it.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub(crate) event: Event,
    pub(crate) json: String,
}

impl StoredEvent {
    pub(crate) fn new(event: Event) -> Arc<Self> {
        let json = event.as_json();
        Arc::new(StoredEvent { event, json })
    }
}

/// What happened to an inserted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// New, stored.
    Stored,
    /// New, stored, and an older version of the same replaceable or addressable event was
    /// removed.
    Replaced(EventId),
    /// Already stored.
    Duplicate,
    /// A replaceable or addressable event older than the version already stored (or as old,
    /// with a higher id): not stored.
    Outdated,
    /// An ephemeral event: not stored, only to be forwarded.
    Ephemeral,
}

impl Insert {
    /// Whether the event is new and must be forwarded to live subscriptions.
    pub(crate) fn is_new(self) -> bool {
        matches!(
            self,
            Insert::Stored | Insert::Replaced(_) | Insert::Ephemeral
        )
    }
}

/// Orders events newest first; with equal `created_at`, lowest id first (NIP-01).
type Order = (Reverse<Timestamp>, EventId);

/// Identifies the one event a replaceable or addressable kind keeps per author.
type Address = (PublicKey, Kind, String);

/// Events in memory, ordered newest first.
#[derive(Debug, Default)]
pub(crate) struct Store {
    ordered: BTreeMap<Order, Arc<StoredEvent>>,
    by_id: HashMap<EventId, Order>,
    by_address: HashMap<Address, EventId>,
}

fn order(event: &Event) -> Order {
    (Reverse(event.created_at), event.id)
}

fn address(event: &Event) -> Option<Address> {
    if event.kind.is_replaceable() {
        Some((event.pubkey, event.kind, String::new()))
    } else if event.kind.is_addressable() {
        Some((event.pubkey, event.kind, event.identifier().to_owned()))
    } else {
        None
    }
}

impl Store {
    /// Stores `event` by the NIP-01 rules (no verification: the caller did it, or chose
    /// not to). Returns what happened and the stored form, to forward when new.
    pub(crate) fn insert(&mut self, event: Event) -> (Insert, Option<Arc<StoredEvent>>) {
        if event.kind.is_ephemeral() {
            return (Insert::Ephemeral, Some(StoredEvent::new(event)));
        }
        if self.by_id.contains_key(&event.id) {
            return (Insert::Duplicate, None);
        }
        let mut replaced = None;
        if let Some(addr) = address(&event) {
            if let Some(old_id) = self.by_address.get(&addr).copied() {
                let old_order = self.by_id.get(&old_id).copied();
                // `order` sorts newer (and, at equal times, lower ids) first: the new event
                // wins only if it sorts before the stored one.
                match old_order {
                    Some(old) if order(&event) < old => {
                        self.ordered.remove(&old);
                        self.by_id.remove(&old_id);
                        replaced = Some(old_id);
                    }
                    Some(_) => return (Insert::Outdated, None),
                    None => {}
                }
            }
            self.by_address.insert(addr, event.id);
        }
        let key = order(&event);
        self.by_id.insert(event.id, key);
        let stored = StoredEvent::new(event);
        self.ordered.insert(key, Arc::clone(&stored));
        let outcome = match replaced {
            Some(old) => Insert::Replaced(old),
            None => Insert::Stored,
        };
        (outcome, Some(stored))
    }

    /// The stored events matching any of `filters`, newest first, at most `limit` per
    /// filter, each event once.
    pub(crate) fn query(&self, filters: &[Filter]) -> Vec<Arc<StoredEvent>> {
        let mut picked: BTreeMap<Order, Arc<StoredEvent>> = BTreeMap::new();
        for filter in filters {
            let limit = filter
                .limit
                .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
            if limit == 0 {
                continue;
            }
            for (key, stored) in self.candidates(filter).take(limit) {
                picked.entry(key).or_insert_with(|| Arc::clone(stored));
            }
        }
        picked.into_values().collect()
    }

    /// How many stored events match any of `filters` (NIP-45; `limit` is ignored).
    pub(crate) fn count(&self, filters: &[Filter]) -> u64 {
        let mut seen: HashSet<EventId> = HashSet::new();
        for filter in filters {
            let unlimited = Filter {
                limit: None,
                ..filter.clone()
            };
            for (_, stored) in self.candidates(&unlimited) {
                seen.insert(stored.event.id);
            }
        }
        seen.len() as u64
    }

    /// Matches of one filter, newest first (ignoring `limit`).
    fn candidates<'a>(
        &'a self,
        filter: &'a Filter,
    ) -> Box<dyn Iterator<Item = (Order, &'a Arc<StoredEvent>)> + 'a> {
        match &filter.ids {
            // Look ids up directly instead of scanning everything.
            Some(ids) => {
                let mut keys: Vec<Order> = ids
                    .iter()
                    .filter_map(|id| self.by_id.get(id))
                    .copied()
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                Box::new(keys.into_iter().filter_map(move |key| {
                    self.ordered
                        .get(&key)
                        .filter(|s| filter.matches(&s.event))
                        .map(|s| (key, s))
                }))
            }
            None => Box::new(
                self.ordered
                    .iter()
                    .filter(move |(_, s)| filter.matches(&s.event))
                    .map(|(key, s)| (*key, s)),
            ),
        }
    }

    /// Every stored event, newest first.
    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> + '_ {
        self.ordered.values().map(|s| &s.event)
    }

    /// How many events are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ordered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EventBuilder, Keys, Tag};

    fn note(keys: &Keys, kind: u16, at: u64, content: &str, tags: Vec<Tag>) -> Event {
        EventBuilder::new(Kind::new(kind), content)
            .tags(tags)
            .created_at(Timestamp::from_secs(at))
            .sign(keys)
    }

    fn contents(events: &[Arc<StoredEvent>]) -> Vec<&str> {
        events.iter().map(|s| s.event.content.as_str()).collect()
    }

    #[test]
    fn regular_events_are_kept_and_duplicates_detected() {
        let keys = Keys::generate();
        let mut store = Store::default();
        let a = note(&keys, 1, 10, "a", vec![]);
        assert_eq!(store.insert(a.clone()).0, Insert::Stored);
        assert_eq!(store.insert(a).0, Insert::Duplicate);
        assert_eq!(
            store.insert(note(&keys, 1, 10, "b", vec![])).0,
            Insert::Stored
        );
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn query_is_newest_first_with_limit_per_filter_and_no_duplicates() {
        let keys = Keys::generate();
        let mut store = Store::default();
        for (at, c) in [(1, "one"), (3, "three"), (2, "two"), (4, "four")] {
            store.insert(note(&keys, 1, at, c, vec![]));
        }
        store.insert(note(&keys, 7, 5, "reaction", vec![]));
        let all = store.query(&[Filter::new()]);
        assert_eq!(contents(&all), ["reaction", "four", "three", "two", "one"]);
        let two = store.query(&[Filter::new().kind(Kind::TEXT_NOTE).limit(2)]);
        assert_eq!(contents(&two), ["four", "three"]);
        let both = store.query(&[
            Filter::new().kind(Kind::TEXT_NOTE).limit(1),
            Filter::new().limit(2),
        ]);
        assert_eq!(contents(&both), ["reaction", "four"]);
        assert!(store.query(&[Filter::new().limit(0)]).is_empty());
        assert_eq!(
            store.count(&[Filter::new().kind(Kind::TEXT_NOTE).limit(1)]),
            4
        );
        assert_eq!(
            store.count(&[Filter::new().kind(Kind::TEXT_NOTE), Filter::new()]),
            5
        );
    }

    #[test]
    fn ties_list_the_lowest_id_first() {
        let keys = Keys::generate();
        let mut store = Store::default();
        let a = note(&keys, 1, 7, "a", vec![]);
        let b = note(&keys, 1, 7, "b", vec![]);
        store.insert(a.clone());
        store.insert(b.clone());
        let ids: Vec<EventId> = store
            .query(&[Filter::new()])
            .iter()
            .map(|s| s.event.id)
            .collect();
        let mut expected = vec![a.id, b.id];
        expected.sort();
        assert_eq!(ids, expected);
    }

    #[test]
    fn query_by_ids_looks_them_up() {
        let keys = Keys::generate();
        let mut store = Store::default();
        let a = note(&keys, 1, 1, "a", vec![]);
        let b = note(&keys, 1, 2, "b", vec![]);
        store.insert(a.clone());
        store.insert(b.clone());
        let found = store.query(&[Filter::new().ids([a.id, b.id, a.id])]);
        assert_eq!(contents(&found), ["b", "a"]);
        let found = store.query(&[Filter::new().id(a.id).kind(Kind::new(7))]);
        assert!(found.is_empty());
    }

    #[test]
    fn replaceable_keeps_the_newest_per_author_and_kind() {
        let keys = Keys::generate();
        let other = Keys::generate();
        let mut store = Store::default();
        let old = note(&keys, 0, 10, "old", vec![]);
        let new = note(&keys, 0, 20, "new", vec![]);
        assert_eq!(store.insert(old.clone()).0, Insert::Stored);
        assert_eq!(store.insert(new.clone()).0, Insert::Replaced(old.id));
        assert_eq!(store.insert(old.clone()).0, Insert::Outdated);
        assert_eq!(
            store.insert(note(&other, 0, 5, "other", vec![])).0,
            Insert::Stored
        );
        assert_eq!(
            store.insert(note(&keys, 10002, 4, "relays", vec![])).0,
            Insert::Stored
        );
        let all = store.query(&[Filter::new()]);
        assert_eq!(contents(&all), ["new", "other", "relays"]);
    }

    #[test]
    fn replaceable_tie_keeps_the_lowest_id() {
        let keys = Keys::generate();
        let x = note(&keys, 3, 10, "x", vec![]);
        let y = note(&keys, 3, 10, "y", vec![]);
        let (low, high) = if x.id < y.id { (x, y) } else { (y, x) };

        let mut store = Store::default();
        store.insert(high.clone());
        assert_eq!(store.insert(low.clone()).0, Insert::Replaced(high.id));
        let mut store2 = Store::default();
        store2.insert(low.clone());
        assert_eq!(store2.insert(high).0, Insert::Outdated);
        for s in [&store, &store2] {
            let ids: Vec<EventId> = s.events().map(|e| e.id).collect();
            assert_eq!(ids, [low.id]);
        }
    }

    #[test]
    fn addressable_keeps_the_newest_per_d_tag() {
        let keys = Keys::generate();
        let mut store = Store::default();
        let d = |v: &str| vec![Tag::identifier(v)];
        let a1 = note(&keys, 30023, 1, "a1", d("a"));
        assert_eq!(store.insert(a1.clone()).0, Insert::Stored);
        assert_eq!(
            store.insert(note(&keys, 30023, 2, "b1", d("b"))).0,
            Insert::Stored
        );
        assert_eq!(
            store.insert(note(&keys, 30023, 3, "a2", d("a"))).0,
            Insert::Replaced(a1.id)
        );
        // No `d` tag means the identifier "".
        assert_eq!(
            store.insert(note(&keys, 30023, 1, "none", vec![])).0,
            Insert::Stored
        );
        assert_eq!(
            store.insert(note(&keys, 30023, 0, "empty", d(""))).0,
            Insert::Outdated
        );
        let all = store.query(&[Filter::new()]);
        assert_eq!(contents(&all), ["a2", "b1", "none"]);
    }

    #[test]
    fn ephemeral_events_are_not_stored() {
        let keys = Keys::generate();
        let mut store = Store::default();
        let e = note(&keys, 20001, 1, "typing", vec![]);
        let (outcome, stored) = store.insert(e.clone());
        assert_eq!(outcome, Insert::Ephemeral);
        assert!(outcome.is_new());
        assert_eq!(stored.map(|s| s.event.id), Some(e.id));
        assert_eq!(store.insert(e).0, Insert::Ephemeral);
        assert_eq!(store.len(), 0);
    }
}
