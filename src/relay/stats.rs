//! Counters of one relay connection, shared lock-free between the connection actor (which
//! writes them) and the pool (which reads them for `Stats` and `ListRelays`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Live counters of one relay. Read a consistent-enough copy with [`RelayStats::snapshot`].
#[derive(Debug, Default)]
pub struct RelayStats {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) events_received: AtomicU64,
    pub(crate) events_delivered: AtomicU64,
    pub(crate) events_duplicate: AtomicU64,
    pub(crate) events_invalid: AtomicU64,
    pub(crate) verifications: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_attempts: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) ping_rtt_micros: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    pub(crate) connected_since: Mutex<Option<SystemTime>>,
}

impl RelayStats {
    /// Adds `n` to one of the connection's own counters: every counter but `errors` (which
    /// the pool writes too, see [`record_error`](Self::record_error)) is written only by the
    /// connection actor that owns these stats, one at a time (a replacement actor starts only
    /// after its predecessor's mailbox is gone). So a plain load and store will do: a locked
    /// `fetch_add` costs ~20–30 ns, and an event bumps four or five counters.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub(crate) fn record_error(&self, error: &str) {
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_owned());
        }
    }

    /// A copy of every counter now.
    pub fn snapshot(&self) -> RelayStatsSnapshot {
        let rtt = self.ping_rtt_micros.load(Relaxed);
        RelayStatsSnapshot {
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            events_received: self.events_received.load(Relaxed),
            events_delivered: self.events_delivered.load(Relaxed),
            events_duplicate: self.events_duplicate.load(Relaxed),
            events_invalid: self.events_invalid.load(Relaxed),
            verifications: self.verifications.load(Relaxed),
            connects: self.connects.load(Relaxed),
            connect_attempts: self.connect_attempts.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            errors: self.errors.load(Relaxed),
            queued: self.queued.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            ping_rtt: (rtt > 0).then(|| Duration::from_micros(rtt)),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
            connected_since: self.connected_since.lock().ok().and_then(|t| *t),
        }
    }
}

/// Counters of one relay at one moment (or of the whole pool, summed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStatsSnapshot {
    /// WebSocket frames received (data and control).
    pub frames_in: u64,
    /// WebSocket frames sent.
    pub frames_out: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// `EVENT` messages received.
    pub events_received: u64,
    /// Events handed to the user's actors.
    pub events_delivered: u64,
    /// Events dropped as already delivered (seen from another relay or twice).
    pub events_duplicate: u64,
    /// Events dropped because the id or signature was wrong.
    pub events_invalid: u64,
    /// BIP-340 verifications performed.
    pub verifications: u64,
    /// Successful connections (the first one and every reconnect).
    pub connects: u64,
    /// Connection attempts, successful or not.
    pub connect_attempts: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
    /// Errors reported to the user (bad frames, failed connects, …).
    pub errors: u64,
    /// Messages now waiting for the relay to connect.
    pub queued: u64,
    /// Events handed to the user's actor and not yet handled (backpressure window).
    pub in_flight: u64,
    /// The last ping round-trip time.
    pub ping_rtt: Option<Duration>,
    /// The last error, as text.
    pub last_error: Option<String>,
    /// Since when the current connection is up.
    pub connected_since: Option<SystemTime>,
}

impl RelayStatsSnapshot {
    /// Adds `other`'s counters into `self` (for pool totals). Keeps the newest error.
    pub fn accumulate(&mut self, other: &RelayStatsSnapshot) {
        self.frames_in += other.frames_in;
        self.frames_out += other.frames_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.events_received += other.events_received;
        self.events_delivered += other.events_delivered;
        self.events_duplicate += other.events_duplicate;
        self.events_invalid += other.events_invalid;
        self.verifications += other.verifications;
        self.connects += other.connects;
        self.connect_attempts += other.connect_attempts;
        self.reconnects += other.reconnects;
        self.errors += other.errors;
        self.queued += other.queued;
        self.in_flight += other.in_flight;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
    }
}
