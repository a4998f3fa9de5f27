//! One timer for all of a connection's request timeouts.
//!
//! actix polls every live timer of a context on every wake-up, so a timer per publish made
//! each wake-up cost as many polls as publishes in flight (benches/pool.rs scenario 5: 59 %
//! of the client's instructions). Here the timeouts wait in a heap and one timer is armed
//! for the earliest; timeouts of requests already answered are skipped when they come up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::protocol::{EventId, SubscriptionId};

/// What times out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// One caller's `Publish` of this event.
    Publish(EventId, u64),
    /// A COUNT query.
    Count(SubscriptionId),
}

#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    what: HashMap<u64, Deadline>,
    next_seq: u64,
    /// The instant the armed timer fires at, if one is armed.
    pub(crate) armed_for: Option<Instant>,
}

impl Deadlines {
    /// Adds a deadline; returns true if the timer must be (re-)armed for it.
    pub(crate) fn push(&mut self, at: Instant, what: Deadline) -> bool {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Reverse((at, self.next_seq)));
        self.what.insert(self.next_seq, what);
        self.armed_for.is_none_or(|armed| at < armed)
    }

    /// Removes and returns everything due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<Deadline> {
        let mut due = Vec::new();
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(what) = self.what.remove(&seq) {
                due.push(what);
            }
        }
        due
    }

    /// The earliest deadline still waiting.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_says_when_to_rearm() {
        let mut d = Deadlines::default();
        let t0 = Instant::now();
        let c = |s: &str| Deadline::Count(SubscriptionId::new(s));
        assert!(d.push(t0 + Duration::from_secs(10), c("late")));
        d.armed_for = Some(t0 + Duration::from_secs(10));
        assert!(!d.push(t0 + Duration::from_secs(20), c("later")));
        assert!(d.push(t0 + Duration::from_secs(5), c("early")));
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(
            d.pop_due(t0 + Duration::from_secs(10)),
            vec![c("early"), c("late")]
        );
        assert_eq!(d.pop_due(t0 + Duration::from_secs(30)), vec![c("later")]);
        assert_eq!(d.next(), None);
    }
}
