//! Errors of one relay connection.

use std::time::Duration;

use crate::protocol::{self, EventId, SubscriptionId};

/// Something that went wrong with one relay. Delivered to the user as
/// [`MessageKind::Error`](super::MessageKind::Error) (counted in the relay's stats), and
/// returned by requests that could not be carried out.
///
/// None of these stop the connection unless said so: bad input from a relay is reported and
/// the connection stays up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A text frame that is not a message this crate understands: broken JSON, the wrong
    /// shape, or an unknown message type. `excerpt` holds its first 128 characters.
    #[error("unparseable frame ({error}): {excerpt}")]
    InvalidFrame {
        /// What the parser said.
        error: protocol::Error,
        /// The start of the frame, for logs.
        excerpt: String,
    },
    /// A text frame that is not UTF-8.
    #[error("text frame is not valid UTF-8")]
    InvalidUtf8,
    /// A binary frame: Nostr relays speak text only. The frame is ignored.
    #[error("unexpected binary frame of {len} bytes")]
    BinaryFrame {
        /// Its size.
        len: usize,
    },
    /// A message larger than the relay's `max_message_size`. The connection is closed
    /// (code 1009) and reconnected.
    #[error("message of {size} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Bytes received so far; `max + 1` for a single frame whose header announced more
        /// than the limit (its payload is not read).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An event whose id or signature is wrong: dropped, never delivered.
    #[error("forged event {event_id} on {subscription_id}: {error}")]
    InvalidEvent {
        /// The subscription it came on.
        subscription_id: SubscriptionId,
        /// The id it claims.
        event_id: EventId,
        /// Which check failed: [`protocol::Error::IdMismatch`] or
        /// [`protocol::Error::InvalidSignature`] (boxed: errors stay small on the hot path).
        error: Box<protocol::Error>,
    },
    /// An `EVENT` for a subscription this connection never opened: dropped.
    #[error("event {event_id} for unknown subscription {subscription_id}")]
    UnknownSubscription {
        /// The subscription id the relay used.
        subscription_id: SubscriptionId,
        /// The event's id.
        event_id: EventId,
    },
    /// An `EVENT` that matches none of its subscription's filters: dropped.
    #[error("event {event_id} does not match the filters of {subscription_id}")]
    UnrequestedEvent {
        /// The subscription.
        subscription_id: SubscriptionId,
        /// The event's id.
        event_id: EventId,
    },
    /// An `OK` for an event this connection has not sent lately (nor an AUTH of ours):
    /// ignored, and not passed on as [`MessageKind::Ok`](super::MessageKind::Ok).
    #[error("OK for event {event_id}, which was not sent to this relay")]
    UnsolicitedOk {
        /// The event id the relay named.
        event_id: EventId,
    },
    /// A second `EOSE` for one subscription on one socket: ignored (stored events end
    /// once per REQ).
    #[error("repeated EOSE for {subscription_id}")]
    RepeatedEose {
        /// The subscription.
        subscription_id: SubscriptionId,
    },
    /// A message larger than the relay's NIP-11 `max_message_length`: not sent.
    #[error("message of {size} bytes exceeds the relay's max_message_length of {max}")]
    TooLargeForRelay {
        /// The message's size.
        size: usize,
        /// The relay's limit.
        max: usize,
    },
    /// Another attempt to open the WebSocket failed (DNS, TCP, TLS, HTTP upgrade, timeout)
    /// while the relay was already reported `Disconnected`.
    #[error("connect attempt {attempt} failed: {reason}; next in {next_retry:?}")]
    ConnectFailed {
        /// What went wrong.
        reason: String,
        /// The attempt that comes next (1-based, counted since the last stable connection).
        attempt: usize,
        /// The delay before the next attempt.
        next_retry: Duration,
    },
    /// The WebSocket protocol was violated by the relay (bad frame, bad continuation).
    #[error("websocket error: {0}")]
    WebSocket(String),
    /// The relay is not connected and its outbound queue is full: the message was not
    /// queued. Retry later or raise `queue_capacity`.
    #[error("outbound queue full ({capacity} messages waiting)")]
    QueueFull {
        /// The queue's bound.
        capacity: usize,
    },
    /// The relay was removed from the pool; nothing more is sent to it.
    #[error("relay removed")]
    Removed,
    /// The relay's connection actor died (a panic) and the pool started a replacement. The
    /// socket was lost; the replacement reconnects.
    #[error("connection actor died and was replaced")]
    ActorRestarted,
}
