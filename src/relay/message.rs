//! What the user's actor receives: [`RelayMessage`].

use std::time::Duration;

use actix::Message;

use super::error::RelayError;
use super::url::RelayUrl;
use crate::protocol::{CountResult, Event, EventId, SubscriptionId};

/// A message from the pool to the user's actor: which relay, and what happened.
///
/// Implement `Handler<RelayMessage>` on your actor and hand its `Recipient` to the pool.
/// Messages from one relay arrive in the order that relay sent them.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RelayMessage {
    /// The relay, in normal form.
    pub relay: RelayUrl,
    /// What happened.
    pub kind: MessageKind,
}

/// What happened at a relay. One variant per GenNostr callback, and a few more.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MessageKind {
    /// The WebSocket is open (GenNostr `handle_connect`). Queued messages are flushed next.
    Connected,
    /// The WebSocket is gone (GenNostr `handle_disconnect`). Reported once per loss.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// When the next attempt is made; `None` when none will be (removed, shut down).
        next_retry: Option<Duration>,
    },
    /// Something went wrong that did not (by itself) end the connection (GenNostr
    /// `handle_error`).
    Error(RelayError),
    /// `["EVENT", <subscription id>, <event>]`, verified unless verification is off for this
    /// relay (GenNostr `handle_event`).
    Event {
        /// The subscription it answers.
        subscription_id: SubscriptionId,
        /// The event.
        event: Box<Event>,
    },
    /// `["OK", <event id>, <accepted>, <message>]` (GenNostr `handle_ok`).
    Ok {
        /// The published event.
        event_id: EventId,
        /// Whether the relay accepted it.
        accepted: bool,
        /// The relay's reason, with its prefix.
        message: String,
    },
    /// `["EOSE", <subscription id>]`: stored events done (GenNostr `handle_eose`).
    Eose(SubscriptionId),
    /// `["CLOSED", <subscription id>, <message>]`: the relay ended a subscription.
    Closed {
        /// Which subscription.
        subscription_id: SubscriptionId,
        /// Why, with a prefix.
        message: String,
    },
    /// `["NOTICE", <message>]` (GenNostr `handle_notice`).
    Notice(String),
    /// `["AUTH", <challenge>]` (GenNostr `handle_auth`). With keys on the pool it is also
    /// answered automatically.
    Auth {
        /// The challenge.
        challenge: String,
    },
    /// `["COUNT", <query id>, {"count": n}]` (NIP-45).
    Count {
        /// Which query.
        subscription_id: SubscriptionId,
        /// The count.
        result: CountResult,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// `RemoveRelay`: ended for good, nothing reconnects it.
    Removed,
    /// The pool is shutting down.
    Shutdown,
    /// The relay sent a close frame.
    ClosedByRelay {
        /// The close code, if any (1000 normal, 1001 going away, 1012 restart, …).
        code: Option<u16>,
        /// The close reason text.
        reason: String,
    },
    /// The TCP stream ended without a close frame.
    ConnectionLost,
    /// No frame within the ping timeout: a dead or half-open socket.
    PingTimeout,
    /// The attempt to connect failed.
    ConnectFailed(String),
    /// A WebSocket protocol error, or a message over the size limit.
    Error(String),
    /// `Reconnect` was asked for.
    ReconnectRequested,
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::Removed => f.write_str("removed"),
            DisconnectReason::Shutdown => f.write_str("shutdown"),
            DisconnectReason::ClosedByRelay { code, reason } => match code {
                Some(code) => write!(f, "closed by relay ({code} {reason})"),
                None => write!(f, "closed by relay ({reason})"),
            },
            DisconnectReason::ConnectionLost => f.write_str("connection lost"),
            DisconnectReason::PingTimeout => f.write_str("ping timeout"),
            DisconnectReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            DisconnectReason::Error(e) => write!(f, "error: {e}"),
            DisconnectReason::ReconnectRequested => f.write_str("reconnect requested"),
        }
    }
}
