//! The reconnect schedule: a list of delays with jitter, restarted once a connection proves
//! stable. Pure logic; the connection actor asks it for the next delay.

use std::time::{Duration, Instant};

/// Where a relay is in its list of reconnect delays.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    delays: Vec<Duration>,
    jitter: f64,
    stable_after: Duration,
    /// Index of the next delay to use.
    attempt: usize,
    /// When the current connection came up, if one is up.
    connected_at: Option<Instant>,
}

impl Backoff {
    pub(crate) fn new(delays: Vec<Duration>, jitter: f64, stable_after: Duration) -> Self {
        Backoff {
            delays,
            jitter,
            stable_after,
            attempt: 0,
            connected_at: None,
        }
    }

    /// A connection came up at `now`.
    pub(crate) fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// The connection was lost (or an attempt failed) at `now`: returns the delay before the
    /// next attempt, and which attempt that is (1-based). The list starts over only if the
    /// connection had stayed up for `stable_after`.
    pub(crate) fn next_delay(&mut self, now: Instant, random_unit: f64) -> (Duration, usize) {
        if let Some(at) = self.connected_at.take() {
            if now.saturating_duration_since(at) >= self.stable_after {
                self.attempt = 0;
            }
        }
        let base = self
            .delays
            .get(self.attempt)
            .or_else(|| self.delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(1));
        self.attempt = self.attempt.saturating_add(1);
        // random_unit in 0..1 maps to a factor in 1-jitter ..= 1+jitter.
        let factor = 1.0 + self.jitter * (2.0 * random_unit.clamp(0.0, 1.0) - 1.0);
        (base.mul_f64(factor.max(0.0)), self.attempt)
    }

    /// Start the list over (an explicit `Reconnect`).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
        self.connected_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn walks_the_list_and_repeats_the_last() {
        let mut b = Backoff::new(vec![ms(500), ms(1000), ms(5000)], 0.0, ms(10_000));
        let now = Instant::now();
        let got: Vec<_> = (0..5).map(|_| b.next_delay(now, 0.5)).collect();
        assert_eq!(
            got,
            vec![
                (ms(500), 1),
                (ms(1000), 2),
                (ms(5000), 3),
                (ms(5000), 4),
                (ms(5000), 5)
            ]
        );
    }

    #[test]
    fn restarts_only_after_a_stable_connection() {
        let mut b = Backoff::new(vec![ms(100), ms(200), ms(300)], 0.0, ms(1000));
        let t0 = Instant::now();
        b.next_delay(t0, 0.5);
        b.next_delay(t0, 0.5);
        // Up for 10 ms only: keeps climbing.
        b.connected(t0);
        assert_eq!(b.next_delay(t0 + ms(10), 0.5), (ms(300), 3));
        // Up for 2 s: starts over.
        b.connected(t0);
        assert_eq!(b.next_delay(t0 + ms(2000), 0.5), (ms(100), 1));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut b = Backoff::new(vec![ms(1000)], 0.2, ms(1000));
        let now = Instant::now();
        assert_eq!(b.next_delay(now, 0.0).0, ms(800));
        assert_eq!(b.next_delay(now, 1.0).0, ms(1200));
        assert_eq!(b.next_delay(now, 0.5).0, ms(1000));
    }
}
