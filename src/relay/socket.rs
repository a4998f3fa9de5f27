//! The socket side of a connection: writing frames, the keep-alive ping, and reading
//! frames into typed relay messages (reassembling continuations under the size cap).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use actix::io::WriteHandler;
use actix::prelude::*;
use actix_http::ws::Item;
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, Frame, Message as WsMessage};
use bytes::{Bytes, BytesMut};

use super::closing_sink::SocketWriteError;
use super::connection::{Outgoing, RelayConnection};
use super::error::RelayError;
use super::message::{DisconnectReason, MessageKind};
use super::stats::RelayStats;
use crate::protocol::{ClientMessage, EventId, InboundFrame, RelayFrame};

/// One item of the socket's read stream, tagged with the connection generation it belongs
/// to, so that a late item of an old socket is never mistaken for the current one.
#[doc(hidden)]
pub enum Inbound {
    Frame(u64, Result<Frame, WsProtocolError>),
    End(u64),
}

pub(super) struct Reassembly {
    pub(super) text: bool,
    pub(super) buf: BytesMut,
}

impl RelayConnection {
    // ---- writing -------------------------------------------------------------------------

    /// Writes one message now. False if there is no socket (or it refuses).
    pub(super) fn write_now(&mut self, out: &Outgoing) -> bool {
        let Some(sink) = self.sink.as_mut() else {
            return false;
        };
        if sink
            .write(WsMessage::Text(out.json.as_str().into()))
            .is_err()
        {
            return false;
        }
        let stats = &self.shared.stats;
        RelayStats::add(&stats.frames_out, 1);
        RelayStats::add(&stats.bytes_out, out.json.len() as u64);
        if let Some(id) = out.publishes {
            self.recently_sent.insert(&id);
            if let Some(pending) = self.pending_ok.get_mut(&id) {
                pending.sent = true;
            }
        }
        true
    }

    pub(super) fn flush_queue(&mut self) {
        while let Some(out) = self.queue.pop_front() {
            if !self.write_now(&out) {
                self.queue.push_front(out);
                break;
            }
        }
        self.stats().queued.store(self.queue.len() as u64, Relaxed);
    }

    /// Writes a message now if connected (and nothing is queued before it), otherwise
    /// queues it. Errors: removed, over the relay's NIP-11 size limit, queue full.
    pub(crate) fn enqueue_or_send(&mut self, message: &ClientMessage) -> Result<(), RelayError> {
        let publishes = match message {
            ClientMessage::Event(event) => Some(event.id),
            _ => None,
        };
        self.enqueue_or_send_json(message.as_json(), publishes)
    }

    /// [`enqueue_or_send`](Self::enqueue_or_send) of a message already serialised;
    /// `publishes` is the id of the event it carries, if it is an `EVENT`.
    pub(crate) fn enqueue_or_send_json(
        &mut self,
        json: String,
        publishes: Option<EventId>,
    ) -> Result<(), RelayError> {
        if self.removed {
            return Err(RelayError::Removed);
        }
        if let Some(max) = self.max_message_length {
            if json.len() > max {
                return Err(RelayError::TooLargeForRelay {
                    size: json.len(),
                    max,
                });
            }
        }
        let out = Outgoing { json, publishes };
        if self.is_connected() && self.queue.is_empty() && self.write_now(&out) {
            return Ok(());
        }
        if self.queue.len() >= self.options.queue_capacity {
            return Err(RelayError::QueueFull {
                capacity: self.options.queue_capacity,
            });
        }
        self.queue.push_back(out);
        self.stats().queued.store(self.queue.len() as u64, Relaxed);
        Ok(())
    }

    /// Writes a control message (REQ, CLOSE, AUTH) if connected; these are never queued,
    /// because subscriptions are re-sent on every connect anyway.
    pub(crate) fn write_control(&mut self, message: &ClientMessage) -> bool {
        let out = Outgoing {
            json: message.as_json(),
            publishes: None,
        };
        self.write_now(&out)
    }

    pub(super) fn send_ping(&mut self, ctx: &mut Context<Self>) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let sent = Instant::now();
        if sink.write(WsMessage::Ping(Bytes::new())).is_err() {
            return;
        }
        RelayStats::add(&self.shared.stats.frames_out, 1);
        self.ping_sent = Some(sent);
        self.check_ping_later(sent, ctx);
    }

    /// After the ping timeout, [`check_ping`](Self::check_ping) whether any frame arrived
    /// on this socket since `since` (the ping, or a resume after waiting for the user).
    fn check_ping_later(&mut self, since: Instant, ctx: &mut Context<Self>) {
        let (generation, frames) = (self.generation, self.frames_rx);
        ctx.run_later(self.options.ping_timeout, move |act, ctx| {
            act.check_ping(generation, since, frames, ctx)
        });
    }

    fn check_ping(
        &mut self,
        generation: u64,
        since: Instant,
        frames: u64,
        ctx: &mut Context<Self>,
    ) {
        if self.generation != generation || self.frames_rx != frames {
            return;
        }
        if self.last_resume > since {
            // We were waiting for the user's actor, not reading: give the relay a fair chance.
            self.check_ping_later(self.last_resume, ctx);
            return;
        }
        log::warn!(
            "{}: no answer to ping within {:?}",
            self.url,
            self.options.ping_timeout
        );
        self.stats().record_error("ping timeout");
        self.connection_lost(DisconnectReason::PingTimeout, ctx);
    }

    // ---- reading -------------------------------------------------------------------------

    pub(super) fn on_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        self.frames_rx += 1;
        RelayStats::add(&self.shared.stats.frames_in, 1);
        match frame {
            Frame::Text(bytes) => self.on_text(bytes, ctx),
            Frame::Binary(bytes) => self.on_binary(bytes.len(), ctx),
            Frame::Continuation(item) => self.on_continuation(item, ctx),
            Frame::Ping(payload) => {
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(WsMessage::Pong(payload));
                }
            }
            Frame::Pong(_) => {
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = sent.elapsed().as_micros().max(1) as u64;
                    self.shared.stats.ping_rtt_micros.store(rtt, Relaxed);
                }
            }
            Frame::Close(reason) => {
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(WsMessage::Close(reason.clone()));
                }
                let (code, text) = match reason {
                    Some(r) => (Some(u16::from(r.code)), r.description.unwrap_or_default()),
                    None => (None, String::new()),
                };
                self.connection_lost(DisconnectReason::ClosedByRelay { code, reason: text }, ctx);
            }
        }
    }

    pub(super) fn on_binary(&mut self, len: usize, ctx: &mut Context<Self>) {
        RelayStats::add(&self.shared.stats.bytes_in, len as u64);
        self.report_error(RelayError::BinaryFrame { len }, ctx);
    }

    pub(super) fn on_continuation(&mut self, item: Item, ctx: &mut Context<Self>) {
        let (first, text, chunk, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, false, b, false),
            Item::Last(b) => (false, false, b, true),
        };
        if first {
            self.reassembly = Some(Reassembly {
                text,
                buf: BytesMut::new(),
            });
        }
        let Some(partial) = self.reassembly.as_mut() else {
            self.report_error(
                RelayError::WebSocket("continuation frame without a first frame".into()),
                ctx,
            );
            return;
        };
        let size = partial.buf.len() + chunk.len();
        if size > self.options.max_message_size {
            let max = self.options.max_message_size;
            self.reassembly = None;
            self.report_error(RelayError::MessageTooLarge { size, max }, ctx);
            if let Some(sink) = self.sink.as_mut() {
                let _ = sink.write(WsMessage::Close(Some(CloseCode::Size.into())));
            }
            self.connection_lost(
                DisconnectReason::Error(format!("message over {max} bytes")),
                ctx,
            );
            return;
        }
        partial.buf.extend_from_slice(&chunk);
        if last {
            if let Some(done) = self.reassembly.take() {
                let bytes = done.buf.freeze();
                if done.text {
                    self.on_text(bytes, ctx);
                } else {
                    self.on_binary(bytes.len(), ctx);
                }
            }
        }
    }

    pub(super) fn on_text(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        RelayStats::add(&self.shared.stats.bytes_in, bytes.len() as u64);
        match RelayFrame::read_inbound(&bytes) {
            Ok(InboundFrame::Event {
                subscription_id,
                event,
            }) => self.on_event(subscription_id, event, ctx),
            Ok(InboundFrame::Other(frame)) => self.on_relay_frame(frame, ctx),
            Err(error) => {
                let excerpt = excerpt(&bytes);
                log::debug!("{}: unparseable frame: {error}: {excerpt}", self.url);
                self.report_error(RelayError::InvalidFrame { error, excerpt }, ctx);
            }
        }
    }

    pub(crate) fn report_error(&mut self, error: RelayError, ctx: &mut Context<Self>) {
        self.stats().record_error(&error.to_string());
        self.deliver(MessageKind::Error(error), ctx);
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(128)]);
    text.into_owned()
}

impl StreamHandler<Inbound> for RelayConnection {
    fn handle(&mut self, item: Inbound, ctx: &mut Context<Self>) {
        match item {
            Inbound::Frame(generation, _) | Inbound::End(generation)
                if generation != self.generation => {}
            Inbound::Frame(_, Ok(frame)) => self.on_frame(frame, ctx),
            Inbound::Frame(_, Err(WsProtocolError::Overflow)) => {
                // A frame whose header announces more than the limit (awc does not read
                // it): the same error and close as for reassembled continuation frames.
                let max = self.options.max_message_size;
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(WsMessage::Close(Some(CloseCode::Size.into())));
                }
                let size = max.saturating_add(1);
                self.report_error(RelayError::MessageTooLarge { size, max }, ctx);
                self.connection_lost(
                    DisconnectReason::Error(format!("message over {max} bytes")),
                    ctx,
                );
            }
            Inbound::Frame(_, Err(WsProtocolError::Io(error))) => {
                // The socket failed (a reset, say): a lost connection, not a protocol
                // violation, and there is no socket left to send a close frame on.
                let text = WsProtocolError::Io(error).to_string();
                self.stats().record_error(&text);
                self.connection_lost(DisconnectReason::Error(text), ctx);
            }
            Inbound::Frame(_, Err(error)) => {
                let text = error.to_string();
                self.stats().record_error(&text);
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(WsMessage::Close(Some(CloseCode::Protocol.into())));
                }
                self.deliver(MessageKind::Error(RelayError::WebSocket(text.clone())), ctx);
                self.connection_lost(DisconnectReason::Error(text), ctx);
            }
            Inbound::End(_) => self.connection_lost(DisconnectReason::ConnectionLost, ctx),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The default stops the actor; the `End` item already reported the loss.
    }
}

impl WriteHandler<SocketWriteError> for RelayConnection {
    /// A write failed. Each socket's writer ends at its first error (a failed write half
    /// fails again on every poll). Only an error of the current socket is a lost
    /// connection; a late error of an old socket (its close failing after a reset, say) is
    /// not news about the current one and must not tear it down.
    fn error(&mut self, err: SocketWriteError, ctx: &mut Context<Self>) -> Running {
        if err.generation != self.generation || self.sink.is_none() {
            log::debug!("{}: an old socket's write half failed: {err}", self.url);
            return Running::Stop;
        }
        // This writer is being polled right now, and tearing the socket down closes it,
        // which would borrow it again: the loss is handled as the next message instead.
        ctx.notify(WriteFailed {
            generation: err.generation,
            error: err.to_string(),
        });
        Running::Stop
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The default stops the actor. A writer ends when its socket's close completed or
        // its socket failed; the read side reports the loss, and a shutdown waiting for its
        // close frame waits on that socket (`ClosingSink::on_closed`).
    }
}

/// The current socket's write half failed (see the `WriteHandler` above).
#[derive(Message)]
#[rtype(result = "()")]
struct WriteFailed {
    generation: u64,
    error: String,
}

impl Handler<WriteFailed> for RelayConnection {
    type Result = ();
    fn handle(&mut self, msg: WriteFailed, ctx: &mut Context<Self>) {
        if msg.generation != self.generation {
            return;
        }
        log::warn!("{}: write failed: {}", self.url, msg.error);
        self.stats().record_error(&msg.error);
        self.connection_lost(DisconnectReason::Error(msg.error), ctx);
    }
}
