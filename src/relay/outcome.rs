//! What a relay said to a publish or a count: the typed outcomes users match on.

use super::error::RelayError;
use crate::protocol::Reason;

/// The outcome of publishing one event to one relay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// `OK true` (including `duplicate:`: the relay has it).
    Accepted {
        /// The relay's message (often empty).
        message: String,
    },
    /// `OK false`, with the prefix parsed.
    Rejected {
        /// The prefix: blocked, rate-limited, invalid, auth-required, …
        reason: Reason,
        /// The whole message.
        message: String,
    },
    /// Sent, but no `OK` came before the timeout.
    NoAnswer,
    /// Never sent.
    NotSent(NotSentReason),
    /// The pool shut down (or its System stopped) before an answer came.
    ShuttingDown {
        /// Whether the event had been written to the relay.
        sent: bool,
    },
}

impl PublishOutcome {
    /// Whether the relay accepted the event.
    pub fn is_accepted(&self) -> bool {
        matches!(self, PublishOutcome::Accepted { .. })
    }
}

/// Why an event was never sent to a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotSentReason {
    /// The relay did not connect before the timeout (the event was withdrawn from its queue).
    NotConnected,
    /// The relay's outbound queue was full.
    QueueFull,
    /// The event is larger than the relay's NIP-11 `max_message_length`.
    TooLarge,
    /// The relay is write-disabled in its options.
    WriteDisabled,
    /// The relay is not in the pool.
    NotInPool,
    /// The relay was removed, or the pool shut down.
    Removed,
}

/// Why a COUNT got no number from a relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CountError {
    /// The relay answered `CLOSED` (for example `unsupported:`).
    #[error("closed by relay: {0}")]
    Closed(String),
    /// The connection was lost before the answer.
    #[error("disconnected")]
    Disconnected,
    /// No answer before the timeout.
    #[error("timed out")]
    Timeout,
    /// Could not be sent.
    #[error("not sent: {0}")]
    NotSent(RelayError),
    /// The relay is not in the pool.
    #[error("relay not in the pool")]
    NotInPool,
    /// The pool shut down before an answer came.
    #[error("shutting down")]
    ShuttingDown,
}
