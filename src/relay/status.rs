//! A relay's connection state, shared with the pool for `ListRelays`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a relay connection is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayState {
    /// Dialling: attempt `attempt` (1 for the first).
    Connecting {
        /// Which attempt.
        attempt: usize,
    },
    /// The WebSocket is open.
    Connected,
    /// Lost or failed; attempt `attempt` is made at `at`.
    WaitingToRetry {
        /// Which attempt comes next.
        attempt: usize,
        /// When.
        at: Instant,
        /// The delay chosen.
        delay: Duration,
    },
    /// Removed from the pool (or the pool shut down): never connects again.
    Removed,
}

/// The state cell shared between a connection actor and the pool.
#[derive(Debug)]
pub(crate) struct SharedState(Mutex<RelayState>);

impl SharedState {
    pub(crate) fn new() -> Self {
        SharedState(Mutex::new(RelayState::Connecting { attempt: 1 }))
    }

    pub(crate) fn set(&self, state: RelayState) {
        if let Ok(mut s) = self.0.lock() {
            *s = state;
        }
    }

    pub(crate) fn get(&self) -> RelayState {
        self.0
            .lock()
            .map(|s| s.clone())
            .unwrap_or(RelayState::Removed)
    }
}
