//! A connection's open subscriptions: what to (re-)send, the newest event seen on each, and
//! the queue of REQs held back by a relay's `max_subscriptions`. Pure bookkeeping; the
//! connection actor does the I/O.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::url::RelayUrl;
use crate::protocol::{Event, Filter, SubscriptionId, Timestamp};

/// What a fetch hears from one relay.
#[derive(Debug)]
pub(crate) enum FetchItem {
    /// A verified event.
    Event(Box<Event>),
    /// This relay is done (EOSE, CLOSED, disconnected, removed).
    Done(RelayUrl, FetchEnd),
}

/// Why a relay's part of a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEnd {
    /// The relay sent EOSE.
    Eose,
    /// The relay sent CLOSED with this message.
    Closed(String),
    /// The connection was lost (or never up) before EOSE.
    Disconnected,
    /// The relay was removed (or was not in the pool).
    Removed,
    /// The pool shut down.
    ShuttingDown,
    /// The fetch timed out before this relay finished.
    TimedOut,
}

/// Where a subscription's events go.
#[derive(Debug, Clone)]
pub(crate) enum SubTarget {
    /// To the user's recipients as `MessageKind::Event`.
    User,
    /// To a fetch in progress.
    Fetch(UnboundedSender<FetchItem>),
}

/// One subscription on one relay.
#[derive(Debug, Clone)]
pub(crate) struct ConnSub {
    /// The user's filters, never changed.
    pub(crate) filters: Arc<Vec<Filter>>,
    /// Newest `created_at` received from this relay on this subscription, as far as it is
    /// known that nothing older is missing (see [`ConnSub::saw_event`]).
    pub(crate) newest: Option<Timestamp>,
    /// Newest `created_at` among the stored events of the current socket's REQ, committed
    /// to `newest` at its EOSE.
    pending_newest: Option<Timestamp>,
    /// The relay sent EOSE for the current socket's REQ.
    eose: bool,
    pub(crate) target: SubTarget,
    pub(crate) close_on_eose: bool,
    /// A REQ for it is live on the current socket.
    pub(crate) live: bool,
    /// An `auth-required:` CLOSED was already retried once.
    pub(crate) auth_retried: bool,
    /// `rate-limited:` CLOSED retries so far.
    pub(crate) rate_retries: u32,
    /// Its part of the de-dup memory's delivery keys (`Dedup::subscription_key`), set by
    /// the connection when it opens the subscription.
    pub(crate) dedup_key: u64,
}

impl ConnSub {
    pub(crate) fn new(filters: Arc<Vec<Filter>>, target: SubTarget, close_on_eose: bool) -> Self {
        ConnSub {
            filters,
            newest: None,
            pending_newest: None,
            eose: false,
            target,
            close_on_eose,
            live: false,
            auth_retried: false,
            rate_retries: 0,
            dedup_key: 0,
        }
    }

    /// A REQ for it was written to the current socket: stored events start over.
    pub(crate) fn req_sent(&mut self) {
        self.live = true;
        self.eose = false;
        self.pending_newest = None;
    }

    /// An event arrived for it. Relays send stored events newest first, so before EOSE the
    /// newest one says nothing about older ones still to come: a socket lost half-way must
    /// not move the resubscription's `since` past them. Only EOSE commits it.
    pub(crate) fn saw_event(&mut self, at: Timestamp) {
        let slot = if self.eose {
            &mut self.newest
        } else {
            &mut self.pending_newest
        };
        if slot.is_none_or(|n| n < at) {
            *slot = Some(at);
        }
    }

    /// EOSE arrived for it; false if one already had on this socket (a repeat).
    pub(crate) fn saw_eose(&mut self) -> bool {
        if self.eose {
            return false;
        }
        self.eose = true;
        if let Some(at) = self.pending_newest.take() {
            if self.newest.is_none_or(|n| n < at) {
                self.newest = Some(at);
            }
        }
        true
    }

    /// The filters to send: the user's, with `since` moved up to the newest event already
    /// delivered minus `overlap` (never below the user's own `since`), so a resubscription
    /// after a reconnect misses nothing and re-sends little. Fetches always send the user's
    /// filters as they are.
    pub(crate) fn req_filters(&self, overlap: Duration) -> Vec<Filter> {
        let Some(newest) = self.newest else {
            return self.filters.as_ref().clone();
        };
        let mark = newest.saturating_sub(overlap);
        self.filters
            .iter()
            .map(|f| {
                let mut f = f.clone();
                if f.since.is_none_or(|s| s < mark) {
                    f.since = Some(mark);
                }
                f
            })
            .collect()
    }

    pub(crate) fn is_fetch(&self) -> bool {
        matches!(self.target, SubTarget::Fetch(_))
    }
}

/// How many recently closed subscription ids are remembered, so that events a relay sends
/// between our CLOSE and its processing are recognised and not reported as unrequested.
const RECENTLY_CLOSED: usize = 64;

/// All subscriptions of one connection.
#[derive(Debug, Default)]
pub(crate) struct SubTable {
    pub(crate) subs: BTreeMap<SubscriptionId, ConnSub>,
    recently_closed: VecDeque<SubscriptionId>,
    /// The relay's `max_subscriptions` (NIP-11), if it declared one.
    pub(crate) max_live: Option<usize>,
}

impl SubTable {
    pub(crate) fn insert(&mut self, id: SubscriptionId, sub: ConnSub) {
        self.recently_closed.retain(|c| c != &id);
        self.subs.insert(id, sub);
    }

    pub(crate) fn remove(&mut self, id: &SubscriptionId) -> Option<ConnSub> {
        let removed = self.subs.remove(id);
        if removed.is_some() {
            self.recently_closed.push_back(id.clone());
            if self.recently_closed.len() > RECENTLY_CLOSED {
                self.recently_closed.pop_front();
            }
        }
        removed
    }

    pub(crate) fn was_recently_closed(&self, id: &str) -> bool {
        self.recently_closed.iter().any(|c| c.as_str() == id)
    }

    /// The subscription with this id, and the id as the table holds it (a shared string:
    /// the clone is a reference count). Two plain lookups: a one-key `range_mut` costs
    /// about three times as many instructions (two bound searches and an iterator), once
    /// per event.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<(SubscriptionId, &mut ConnSub)> {
        let key = self.subs.get_key_value(id)?.0.clone();
        let sub = self.subs.get_mut(id)?;
        Some((key, sub))
    }

    pub(crate) fn live_count(&self) -> usize {
        self.subs.values().filter(|s| s.live).count()
    }

    /// Ids of subscriptions that may be sent now, in id order, within `max_live`.
    pub(crate) fn sendable(&self) -> Vec<SubscriptionId> {
        let room = match self.max_live {
            Some(max) => max.saturating_sub(self.live_count()),
            None => usize::MAX,
        };
        self.subs
            .iter()
            .filter(|(_, s)| !s.live)
            .take(room)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The socket is gone: nothing is live any more.
    pub(crate) fn mark_all_down(&mut self) {
        for sub in self.subs.values_mut() {
            sub.live = false;
        }
    }

    /// Removes and returns every fetch (they end when the socket does).
    pub(crate) fn take_fetches(&mut self) -> Vec<(SubscriptionId, ConnSub)> {
        let ids: Vec<_> = self
            .subs
            .iter()
            .filter(|(_, s)| s.is_fetch())
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| self.remove(&id).map(|s| (id, s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Kind;

    fn sub(filters: Vec<Filter>) -> ConnSub {
        ConnSub::new(Arc::new(filters), SubTarget::User, false)
    }

    #[test]
    fn since_moves_up_but_never_down_and_filters_are_not_mutated() {
        let mut s = sub(vec![
            Filter::new().kind(Kind::TEXT_NOTE),
            Filter::new().since(Timestamp::from_secs(5000)),
        ]);
        assert_eq!(s.req_filters(Duration::from_secs(10)), *s.filters);
        s.newest = Some(Timestamp::from_secs(1000));
        let f = s.req_filters(Duration::from_secs(10));
        assert_eq!(f[0].since, Some(Timestamp::from_secs(990)));
        assert_eq!(f[1].since, Some(Timestamp::from_secs(5000)));
        assert_eq!(s.filters[0].since, None);
    }

    #[test]
    fn since_moves_only_once_the_stored_events_ended() {
        let mut s = sub(vec![Filter::new()]);
        s.req_sent();
        // Stored events, newest first; the socket dies before EOSE.
        s.saw_event(Timestamp::from_secs(300));
        s.saw_event(Timestamp::from_secs(200));
        assert_eq!(s.newest, None);
        s.req_sent();
        s.saw_event(Timestamp::from_secs(300));
        assert!(s.saw_eose());
        assert_eq!(s.newest, Some(Timestamp::from_secs(300)));
        assert!(!s.saw_eose(), "a second EOSE on one socket is a repeat");
        // Live events move it at once.
        s.saw_event(Timestamp::from_secs(400));
        assert_eq!(s.newest, Some(Timestamp::from_secs(400)));
        // A new socket: the stored events start over, `newest` is kept.
        s.req_sent();
        s.saw_event(Timestamp::from_secs(500));
        assert_eq!(s.newest, Some(Timestamp::from_secs(400)));
    }

    #[test]
    fn max_live_holds_back_the_rest() {
        let mut t = SubTable {
            max_live: Some(2),
            ..SubTable::default()
        };
        for n in 0..5 {
            t.insert(
                SubscriptionId::new(format!("s{n}")),
                sub(vec![Filter::new()]),
            );
        }
        let first = t.sendable();
        assert_eq!(first.len(), 2);
        for id in &first {
            if let Some(s) = t.subs.get_mut(id) {
                s.live = true;
            }
        }
        assert!(t.sendable().is_empty());
        t.remove(&first[0]);
        assert_eq!(t.sendable().len(), 1);
        assert!(t.was_recently_closed(first[0].as_str()));
    }
}
