//! The messages users send to the [`RelayPool`], one struct each, with their handlers.

use std::collections::BTreeMap;

use actix::prelude::*;
use futures_util::future::join_all;

use super::actor::RelayPool;
use super::error::PoolError;
use crate::protocol::ClientMessage;
use crate::relay::{
    CloseConnection, DisconnectReason, ReconnectNow, RelayOptions, RelayState, RelayStatsSnapshot,
    RelayUrl, Send,
};

fn unavailable(url: &RelayUrl) -> impl FnOnce(MailboxError) -> PoolError + '_ {
    move |_| PoolError::Unavailable(url.clone())
}

// ---- AddRelay ------------------------------------------------------------------------------

/// Adds a relay and starts connecting to it.
///
/// The URL is normalised first ([`RelayUrl`]): `wss://Relay.com` and `wss://relay.com/` are
/// one relay. Replies [`AddOutcome::Added`], or [`AddOutcome::AlreadyPresent`] (nothing is
/// changed, the existing relay keeps its options), or [`PoolError::InvalidUrl`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<AddOutcome, PoolError>")]
pub struct AddRelay {
    /// The relay's URL.
    pub url: String,
    /// Its options; `None` for the pool's defaults.
    pub options: Option<RelayOptions>,
}

impl AddRelay {
    /// Adds `url` with the pool's default options.
    pub fn new(url: impl Into<String>) -> Self {
        AddRelay {
            url: url.into(),
            options: None,
        }
    }

    /// Uses these options for this relay.
    pub fn with_options(mut self, options: RelayOptions) -> Self {
        self.options = Some(options);
        self
    }
}

/// The reply to [`AddRelay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The relay was new; its connection is starting.
    Added(RelayUrl),
    /// The relay (after normalising) was already in the pool; nothing changed.
    AlreadyPresent(RelayUrl),
}

impl Handler<AddRelay> for RelayPool {
    type Result = Result<AddOutcome, PoolError>;
    fn handle(&mut self, msg: AddRelay, _ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Err(PoolError::ShuttingDown);
        }
        let url = RelayUrl::parse(&msg.url)?;
        let options = msg.options.unwrap_or_else(|| self.default_options.clone());
        if self.add_relay(url.clone(), options) {
            Ok(AddOutcome::Added(url))
        } else {
            Ok(AddOutcome::AlreadyPresent(url))
        }
    }
}

// ---- RemoveRelay ---------------------------------------------------------------------------

/// Removes a relay for good: its connection sends a close frame, the recipients get
/// `Disconnected` with reason [`DisconnectReason::Removed`], and nothing reconnects it (also
/// not if it was waiting to retry). Replies once the connection has shut down, or
/// [`PoolError::UnknownRelay`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PoolError>")]
pub struct RemoveRelay {
    /// The relay's URL (normalised before lookup).
    pub url: String,
}

impl RemoveRelay {
    /// Removes `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RemoveRelay { url: url.into() }
    }
}

impl Handler<RemoveRelay> for RelayPool {
    type Result = ResponseFuture<Result<(), PoolError>>;
    fn handle(&mut self, msg: RemoveRelay, _ctx: &mut Context<Self>) -> Self::Result {
        let url = match RelayUrl::parse(&msg.url) {
            Ok(url) => url,
            Err(e) => return Box::pin(async move { Err(e.into()) }),
        };
        let Some(handle) = self.relays.remove(&url) else {
            return Box::pin(async move { Err(PoolError::UnknownRelay(url)) });
        };
        Box::pin(async move {
            // If the actor is gone (crashed), there is nothing left to shut down.
            let _ = handle
                .addr
                .send(CloseConnection(DisconnectReason::Removed))
                .await;
            Ok(())
        })
    }
}

// ---- ListRelays ----------------------------------------------------------------------------

/// Lists the relays in the pool with their state, options and counters, in URL order.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "Vec<RelayInfo>")]
pub struct ListRelays;

/// One relay, as [`ListRelays`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayInfo {
    /// The relay.
    pub url: RelayUrl,
    /// Connecting, connected, waiting for retry n at time t, removed.
    pub state: RelayState,
    /// Its options.
    pub options: RelayOptions,
    /// Its counters.
    pub stats: RelayStatsSnapshot,
    /// Its NIP-11 information document, once fetched (see
    /// [`RelayOptions::fetch_info`](crate::relay::RelayOptions::fetch_info)).
    pub info: Option<crate::protocol::nip11::RelayInformation>,
}

impl Handler<ListRelays> for RelayPool {
    type Result = Vec<RelayInfo>;
    fn handle(&mut self, _: ListRelays, _ctx: &mut Context<Self>) -> Self::Result {
        self.relays
            .values()
            .map(|h| RelayInfo {
                url: h.url.clone(),
                state: h.shared.state.get(),
                options: h.options.clone(),
                stats: h.shared.stats.snapshot(),
                info: h.shared.info.lock().ok().and_then(|i| i.clone()),
            })
            .collect()
    }
}

// ---- SendTo / Broadcast --------------------------------------------------------------------

/// Sends a client message to one relay: at once if connected, otherwise queued (in order)
/// until it is. Replies `Ok(())` when sent or queued, [`PoolError::Relay`] with
/// [`RelayError::QueueFull`](crate::relay::RelayError::QueueFull) when the queue is full,
/// or [`PoolError::UnknownRelay`]. Nothing is dropped silently.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PoolError>")]
pub struct SendTo {
    /// The relay's URL (normalised before lookup).
    pub relay: String,
    /// What to send.
    pub message: ClientMessage,
}

impl SendTo {
    /// Sends `message` to `relay`.
    pub fn new(relay: impl Into<String>, message: ClientMessage) -> Self {
        SendTo {
            relay: relay.into(),
            message,
        }
    }
}

impl Handler<SendTo> for RelayPool {
    type Result = ResponseFuture<Result<(), PoolError>>;
    fn handle(&mut self, msg: SendTo, _ctx: &mut Context<Self>) -> Self::Result {
        let target = RelayUrl::parse(&msg.relay)
            .map_err(PoolError::from)
            .and_then(|url| self.relay_handle(&url).map(|h| (url, h.addr.clone())));
        Box::pin(async move {
            let (url, addr) = target?;
            addr.send(Send(msg.message))
                .await
                .map_err(unavailable(&url))?
                .map_err(|error| PoolError::Relay { relay: url, error })
        })
    }
}

/// Sends a client message to every relay in the pool (each sends or queues it as
/// [`SendTo`] does). Replies with each relay's outcome.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<(RelayUrl, Result<(), PoolError>)>")]
pub struct Broadcast {
    /// What to send.
    pub message: ClientMessage,
}

impl Broadcast {
    /// Sends `message` to every relay.
    pub fn new(message: ClientMessage) -> Self {
        Broadcast { message }
    }
}

impl Handler<Broadcast> for RelayPool {
    type Result = ResponseFuture<Vec<(RelayUrl, Result<(), PoolError>)>>;
    fn handle(&mut self, msg: Broadcast, _ctx: &mut Context<Self>) -> Self::Result {
        let sends: Vec<_> = self
            .relays
            .values()
            .map(|h| {
                let url = h.url.clone();
                let request = h.addr.send(Send(msg.message.clone()));
                async move {
                    let outcome = request.await.map_err(unavailable(&url)).and_then(|r| {
                        r.map_err(|error| PoolError::Relay {
                            relay: url.clone(),
                            error,
                        })
                    });
                    (url, outcome)
                }
            })
            .collect();
        Box::pin(join_all(sends))
    }
}

// ---- Reconnect -----------------------------------------------------------------------------

/// Drops the relay's socket (if any) and dials again now, with its backoff list started
/// over. Replies once the connection has started dialling, or [`PoolError::UnknownRelay`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PoolError>")]
pub struct Reconnect {
    /// The relay's URL (normalised before lookup).
    pub relay: String,
}

impl Reconnect {
    /// Reconnects `relay`.
    pub fn new(relay: impl Into<String>) -> Self {
        Reconnect {
            relay: relay.into(),
        }
    }
}

impl Handler<Reconnect> for RelayPool {
    type Result = ResponseFuture<Result<(), PoolError>>;
    fn handle(&mut self, msg: Reconnect, _ctx: &mut Context<Self>) -> Self::Result {
        let target = RelayUrl::parse(&msg.relay)
            .map_err(PoolError::from)
            .and_then(|url| self.relay_handle(&url).map(|h| (url, h.addr.clone())));
        Box::pin(async move {
            let (url, addr) = target?;
            addr.send(ReconnectNow).await.map_err(unavailable(&url))
        })
    }
}

// ---- Stats ---------------------------------------------------------------------------------

/// Counters per relay and in total.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "PoolStats")]
pub struct Stats;

/// The reply to [`Stats`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Each relay's counters.
    pub relays: BTreeMap<RelayUrl, RelayStatsSnapshot>,
    /// All relays summed.
    pub total: RelayStatsSnapshot,
    /// The pool's de-dup memory: verifications skipped, duplicates suppressed.
    pub dedup: crate::relay::DedupStats,
}

impl Handler<Stats> for RelayPool {
    type Result = MessageResult<Stats>;
    fn handle(&mut self, _: Stats, _ctx: &mut Context<Self>) -> Self::Result {
        let mut stats = PoolStats {
            dedup: self.dedup_stats(),
            ..PoolStats::default()
        };
        for h in self.relays.values() {
            let snapshot = h.shared.stats.snapshot();
            stats.total.accumulate(&snapshot);
            stats.relays.insert(h.url.clone(), snapshot);
        }
        MessageResult(stats)
    }
}

// ---- AddRecipient / RemoveRecipient -------------------------------------------------------

/// Adds an actor that receives every [`RelayMessage`](crate::relay::RelayMessage) from now
/// on (for example a WebSocket session that opened after the pool started). Replies `false`
/// if it was already a recipient.
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct AddRecipient(pub Recipient<crate::relay::RelayMessage>);

impl Handler<AddRecipient> for RelayPool {
    type Result = bool;
    fn handle(&mut self, msg: AddRecipient, _ctx: &mut Context<Self>) -> bool {
        if self.recipients.contains(&msg.0) {
            return false;
        }
        self.recipients.push(msg.0);
        self.recipients_changed();
        true
    }
}

/// Stops sending messages to a recipient. Replies `false` if it was not one. (A recipient
/// whose actor has stopped is dropped by itself.)
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct RemoveRecipient(pub Recipient<crate::relay::RelayMessage>);

impl Handler<RemoveRecipient> for RelayPool {
    type Result = bool;
    fn handle(&mut self, msg: RemoveRecipient, _ctx: &mut Context<Self>) -> bool {
        let before = self.recipients.len();
        self.recipients.retain(|r| r != &msg.0);
        if self.recipients.len() == before {
            return false;
        }
        self.recipients_changed();
        true
    }
}

// ---- Shutdown ------------------------------------------------------------------------------

/// Shuts the pool down: every connection sends a close frame and reports `Disconnected`
/// with reason [`DisconnectReason::Shutdown`]; pending [`Publish`](super::Publish),
/// [`Fetch`](super::Fetch) and [`Count`](super::Count) requests resolve with their
/// "shutting down" outcomes; then the pool stops. Replies once the close frames are flushed
/// (at most about 2 s per relay, in parallel).
///
/// Stopping the actix System, or dropping every address of the pool, also closes every
/// connection, without waiting for the flush.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for RelayPool {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let closes: Vec<_> = self
            .relays
            .values()
            .map(|h| h.addr.send(CloseConnection(DisconnectReason::Shutdown)))
            .collect();
        Box::pin(join_all(closes).into_actor(self).map(|_, act, ctx| {
            act.relays.clear();
            ctx.stop();
        }))
    }
}

// ---- Testing hooks -------------------------------------------------------------------------

/// Makes one relay's connection actor stop or panic, to test supervision (feature
/// `testing`). Replies [`PoolError::UnknownRelay`] for a relay not in the pool.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PoolError>")]
pub struct InjectActorFault {
    /// The relay's URL.
    pub relay: String,
    /// What to do to its actor.
    pub fault: crate::relay::ActorFault,
}

#[cfg(feature = "testing")]
impl Handler<InjectActorFault> for RelayPool {
    type Result = Result<(), PoolError>;
    fn handle(&mut self, msg: InjectActorFault, _ctx: &mut Context<Self>) -> Self::Result {
        let url = RelayUrl::parse(&msg.relay)?;
        self.relay_handle(&url)?
            .addr
            .do_send(crate::relay::InjectFault(msg.fault));
        Ok(())
    }
}
