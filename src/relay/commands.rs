//! The messages a connection handles for the pool: send, reconnect, close, and test faults.

use std::time::Duration;

use actix::prelude::*;
use awc::ws::{CloseCode, Message as WsMessage};

use super::closing_sink::ClosingSink;
use super::connection::RelayConnection;
use super::error::RelayError;
use super::message::{DisconnectReason, MessageKind};
use crate::protocol::ClientMessage;

// ---- messages ------------------------------------------------------------------------------

/// Sends one client message to this relay now, or queues it until the relay is connected.
/// Sent by the pool for `SendTo` and `Broadcast`. Replies `Err(QueueFull)` when the queue is
/// at `queue_capacity`, `Err(Removed)` after removal.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RelayError>")]
pub(crate) struct Send(pub(crate) ClientMessage);

impl Handler<Send> for RelayConnection {
    type Result = Result<(), RelayError>;
    fn handle(&mut self, msg: Send, _ctx: &mut Context<Self>) -> Self::Result {
        self.enqueue_or_send(&msg.0)
    }
}

/// Drop the socket (if any) and dial again now, with the backoff list started over.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ReconnectNow;

impl Handler<ReconnectNow> for RelayConnection {
    type Result = ();
    fn handle(&mut self, _: ReconnectNow, ctx: &mut Context<Self>) {
        if self.removed {
            return;
        }
        self.backoff.reset();
        if let Some(handle) = self.retry_timer.take() {
            ctx.cancel_future(handle);
        }
        if self.is_connected() {
            if let Some(sink) = self.sink.as_mut() {
                let _ = sink.write(WsMessage::Close(Some(CloseCode::Normal.into())));
            }
            self.generation += 1;
            self.drop_socket(ctx);
            // As for any lost socket: the REQs must go out again on the new one.
            self.end_socket_bound_requests(super::subscriptions::FetchEnd::Disconnected);
            self.outage_reported = true;
            self.deliver(
                MessageKind::Disconnected {
                    reason: DisconnectReason::ReconnectRequested,
                    next_retry: Some(Duration::ZERO),
                },
                ctx,
            );
        }
        self.connecting = false;
        self.generation += 1;
        self.connect(ctx);
    }
}

/// How long a shutdown waits for the close frame to be flushed.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// End this connection for good: close frame, `Disconnected` with `reason`, no reconnect.
/// Resolves once the close frame has been flushed to the socket (or after 2 s).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct CloseConnection(pub(crate) DisconnectReason);

impl Handler<CloseConnection> for RelayConnection {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: CloseConnection, ctx: &mut Context<Self>) -> Self::Result {
        // This socket's close, not any writer's end: an old socket's writer may end first.
        let closed = self.close_on_drop.as_ref().map(ClosingSink::on_closed);
        self.shut_down(msg.0, ctx);
        let Some(rx) = closed else {
            return Box::pin(async {});
        };
        Box::pin(async move {
            let _ = actix::clock::timeout(CLOSE_FLUSH_TIMEOUT, rx).await;
        })
    }
}

/// Faults for tests of supervision: make the actor stop (the supervisor restarts it) or
/// panic (the pool replaces it).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActorFault {
    /// `ctx.stop()`: the supervisor restarts the actor in place.
    Stop,
    /// A panic inside a handler: the task dies and the pool starts a replacement.
    Panic,
}

#[cfg(feature = "testing")]
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct InjectFault(pub(crate) ActorFault);

#[cfg(feature = "testing")]
impl Handler<InjectFault> for RelayConnection {
    type Result = ();
    #[allow(clippy::panic)]
    fn handle(&mut self, msg: InjectFault, ctx: &mut Context<Self>) {
        match msg.0 {
            ActorFault::Stop => ctx.stop(),
            ActorFault::Panic => panic!("{}: injected panic (testing)", self.url),
        }
    }
}
