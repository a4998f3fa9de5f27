//! One client connection: an actix-web-actors session actor speaking NIP-01, NIP-42 and
//! NIP-45.
//!
//! # Lifecycle
//!
//! The HTTP handler ([`super::server`]) upgrades the request, starts a `Session` in a
//! `WebsocketContext` and registers its `Addr` in the shared state. When the actor starts it
//! sends the NIP-42 challenge (if authentication is required) and arms the server ping
//! interval (if configured). Each text frame is recorded in the received log, parsed and
//! answered; nothing a client sends can make it panic. It stops when the client closes, the
//! socket ends, a frame is too large, or the test injects a fault; it unregisters when it
//! stops and, as a backstop, when it is dropped (a server restart drops sessions without
//! stopping them).
//!
//! Every answer, live event, pong and raw frame goes through [`Session::send`], which
//! applies the relay's silence (drop the frame) and delay (queue it, in order, until due).
//! Only the frames that end a connection (a close reply, the 1009 close, injected closes)
//! are written directly.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, ActorContext, AsyncContext, Handler, Message, StreamHandler};
use actix_http::ws::Item;
use actix_web_actors::ws;
use bytes::{Bytes, BytesMut};

use super::inspect::{ConnectionId, ReceivedFrame};
use super::state::{event_frame, Shared};
use super::store::Insert;
use crate::protocol::{
    nip42, ClientMessage, CountResult, Event, EventId, Filter, PublicKey, RelayFrame,
    SubscriptionId,
};

type Ctx = ws::WebsocketContext<Session>;

/// How far an AUTH event's `created_at` may be from now (NIP-42 suggests "about 10 minutes").
const AUTH_WINDOW_SECS: u64 = 600;

/// Payload of the relay's own pings.
const PING_PAYLOAD: &[u8] = b"actix-nostr test relay";

/// Text frames for this session, sent by other sessions (live events) or by the test
/// (forged events). Each is sent as it is, subject to silence and delay.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Deliver(pub(crate) Vec<String>);

/// A fault the test injects into one connection.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum Control {
    /// Stop at once: the socket closes without a close frame.
    Drop,
    /// Send a close frame with this code and reason, then stop.
    Close { code: u16, reason: String },
    /// Send this text frame.
    RawText(String),
    /// Send this binary frame.
    RawBinary(Bytes),
}

/// The session actor of one connection.
pub(crate) struct Session {
    id: ConnectionId,
    path: String,
    scope: String,
    url: String,
    shared: Arc<Shared>,
    challenge: Option<String>,
    authenticated: Option<PublicKey>,
    /// Frames held back by the delay fault, with when they are due.
    delayed: VecDeque<(Instant, ws::Message)>,
    /// A fragmented message being reassembled: whether it is binary, and its bytes so far.
    fragments: Option<(bool, BytesMut)>,
}

impl Session {
    pub(crate) fn new(id: ConnectionId, path: &str, shared: Arc<Shared>) -> Self {
        Session {
            id,
            path: path.to_owned(),
            scope: shared.scope(path),
            url: shared.url_for(path),
            shared,
            challenge: None,
            authenticated: None,
            delayed: VecDeque::new(),
            fragments: None,
        }
    }

    /// Sends a frame, unless the relay is silent; after the configured delay, in order.
    fn send(&mut self, msg: ws::Message, ctx: &mut Ctx) {
        if self.shared.is_silent() {
            return;
        }
        let delay = self.shared.delay();
        if delay.is_zero() && self.delayed.is_empty() {
            ctx.write_raw(msg);
            return;
        }
        let now = Instant::now();
        // Never before a frame queued earlier, even if the delay was shortened since.
        let due = self
            .delayed
            .back()
            .map_or(now + delay, |(last, _)| (*last).max(now + delay));
        let was_empty = self.delayed.is_empty();
        self.delayed.push_back((due, msg));
        if was_empty {
            ctx.run_later(due - now, Self::flush_delayed);
        }
    }

    /// Sends the delayed frames that are due and re-arms the timer for the rest.
    fn flush_delayed(&mut self, ctx: &mut Ctx) {
        let now = Instant::now();
        while let Some((due, _)) = self.delayed.front() {
            if *due > now {
                let wait = *due - now;
                ctx.run_later(wait, Self::flush_delayed);
                return;
            }
            if let Some((_, msg)) = self.delayed.pop_front() {
                if !self.shared.is_silent() {
                    ctx.write_raw(msg);
                }
            }
        }
    }

    fn send_text(&mut self, text: String, ctx: &mut Ctx) {
        self.send(ws::Message::Text(text.into()), ctx);
    }

    fn send_frame(&mut self, frame: RelayFrame, ctx: &mut Ctx) {
        self.send_text(frame.as_json(), ctx);
    }

    fn ok(&mut self, event_id: EventId, accepted: bool, message: &str, ctx: &mut Ctx) {
        let frame = RelayFrame::Ok {
            event_id,
            accepted,
            message: message.to_owned(),
        };
        self.send_frame(frame, ctx);
    }

    /// An OK for an EVENT: suppressed when the relay is set to never send OK.
    fn event_ok(&mut self, event_id: EventId, accepted: bool, message: &str, ctx: &mut Ctx) {
        if !self.shared.never_ok() {
            self.ok(event_id, accepted, message, ctx);
        }
    }

    fn closed(&mut self, subscription_id: SubscriptionId, message: &str, ctx: &mut Ctx) {
        let frame = RelayFrame::Closed {
            subscription_id,
            message: message.to_owned(),
        };
        self.send_frame(frame, ctx);
    }

    fn notice(&mut self, message: String, ctx: &mut Ctx) {
        self.send_frame(RelayFrame::Notice(message), ctx);
    }

    fn needs_auth(&self) -> bool {
        self.shared.options.auth_required && self.authenticated.is_none()
    }

    /// A complete text or binary message from the client.
    fn on_message(&mut self, bytes: &[u8], binary: bool, ctx: &mut Ctx) {
        let message = if binary {
            Err(crate::protocol::Error::Malformed(
                "binary frames are not Nostr messages".to_owned(),
            ))
        } else {
            ClientMessage::from_slice(bytes)
        };
        let record = ReceivedFrame {
            connection: self.id,
            path: self.path.clone(),
            text: String::from_utf8_lossy(bytes).into_owned(),
            binary,
            message: message.clone(),
        };
        match message {
            Err(e) => {
                log::debug!("{}: {} sent a bad frame: {e}", self.url, self.id);
                self.notice(format!("error: {e}"), ctx);
            }
            Ok(ClientMessage::Event(event)) => self.on_event(*event, ctx),
            Ok(ClientMessage::Req {
                subscription_id,
                filters,
            }) => self.on_req(subscription_id, filters, ctx),
            Ok(ClientMessage::Close(subscription_id)) => {
                self.shared.update(|st| {
                    if let Some(s) = st.sessions.get_mut(&self.id) {
                        s.subscriptions.remove(&subscription_id);
                    }
                });
            }
            Ok(ClientMessage::Auth(event)) => self.on_auth(*event, ctx),
            Ok(ClientMessage::Count {
                subscription_id,
                filters,
            }) => self.on_count(subscription_id, filters, ctx),
        }
        // Recorded after its effects (a REQ's subscription is open once the frame shows),
        // and before the answers leave: they are written when this handler returns.
        self.shared.record(record);
    }

    fn on_event(&mut self, event: Event, ctx: &mut Ctx) {
        let id = event.id;
        if self.needs_auth() {
            let msg = "auth-required: this relay only accepts events from authenticated clients";
            self.event_ok(id, false, msg, ctx);
            return;
        }
        if let Err(e) = event.verify() {
            self.event_ok(id, false, &format!("invalid: {e}"), ctx);
            return;
        }
        if let Some(policy) = self.shared.policy() {
            if let Err(message) = policy(&event) {
                self.event_ok(id, false, &message, ctx);
                return;
            }
        }
        let (outcome, deliveries) = self
            .shared
            .store_and_route(&self.scope, event, Some(self.id));
        let own = deliveries.send_others();
        match outcome {
            Insert::Duplicate => self.event_ok(id, true, "duplicate: already have this event", ctx),
            Insert::Outdated => self.event_ok(id, false, "replaced: have newer event", ctx),
            Insert::Stored | Insert::Replaced(_) | Insert::Ephemeral => {
                self.event_ok(id, true, "", ctx)
            }
        }
        for frame in own {
            self.send_text(frame, ctx);
        }
    }

    /// Checks a REQ or COUNT against authentication and the filter limit.
    fn refuse_query(&self, filters: &[Filter]) -> Option<&'static str> {
        if self.needs_auth() {
            Some("auth-required: this relay only serves authenticated clients")
        } else if filters.len() > self.shared.options.max_filters {
            Some("error: too many filters")
        } else {
            None
        }
    }

    fn on_req(&mut self, sub: SubscriptionId, filters: Vec<Filter>, ctx: &mut Ctx) {
        let max_subscriptions = self.shared.options.max_subscriptions;
        let refusal = self.refuse_query(&filters);
        let answer = self.shared.update(|st| {
            let session = st
                .sessions
                .get_mut(&self.id)
                .ok_or("error: connection closing")?;
            if let Some(refusal) = refusal {
                // A refused REQ still ends the subscription it was meant to replace.
                session.subscriptions.remove(&sub);
                return Err(refusal);
            }
            if !session.subscriptions.contains_key(&sub)
                && session.subscriptions.len() >= max_subscriptions
            {
                return Err("error: too many subscriptions");
            }
            // Registered and queried under one lock: see `Shared::store_and_route`.
            session.subscriptions.insert(sub.clone(), filters.clone());
            Ok(st
                .stores
                .get(&self.scope)
                .map(|store| store.query(&filters))
                .unwrap_or_default())
        });
        match answer {
            Err(message) => self.closed(sub, message, ctx),
            Ok(events) => {
                for stored in events {
                    self.send_text(event_frame(&sub, &stored.json), ctx);
                }
                if !self.shared.never_eose() {
                    self.send_frame(RelayFrame::Eose(sub), ctx);
                }
            }
        }
    }

    fn on_count(&mut self, sub: SubscriptionId, filters: Vec<Filter>, ctx: &mut Ctx) {
        if let Some(refusal) = self.refuse_query(&filters) {
            self.closed(sub, refusal, ctx);
            return;
        }
        let count = self.shared.read(|st| {
            st.stores
                .get(&self.scope)
                .map_or(0, |store| store.count(&filters))
        });
        let frame = RelayFrame::Count {
            subscription_id: sub,
            result: CountResult {
                count,
                approximate: false,
            },
        };
        self.send_frame(frame, ctx);
    }

    fn on_auth(&mut self, event: Event, ctx: &mut Ctx) {
        let id = event.id;
        let Some(challenge) = self.challenge.clone() else {
            self.ok(id, false, "error: this relay sent no AUTH challenge", ctx);
            return;
        };
        match nip42::check_auth_event(&event, &self.url, &challenge, AUTH_WINDOW_SECS) {
            Ok(()) => {
                let pubkey = event.pubkey;
                self.authenticated = Some(pubkey);
                self.shared.update(|st| {
                    if let Some(s) = st.sessions.get_mut(&self.id) {
                        s.authenticated = Some(pubkey);
                    }
                });
                log::debug!("{}: {} authenticated as {pubkey}", self.url, self.id);
                self.ok(id, true, "", ctx);
            }
            Err(e) => self.ok(id, false, &e.to_string(), ctx),
        }
    }

    /// A frame larger than the limit: NOTICE, then close with 1009 (message too big).
    fn too_big(&mut self, ctx: &mut Ctx) {
        let max = self.shared.options.max_message_size;
        log::debug!("{}: {} sent a message over {max} bytes", self.url, self.id);
        let notice = RelayFrame::Notice(format!("error: message larger than {max} bytes"));
        ctx.text(notice.as_json());
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Size,
            description: Some("message too big".to_owned()),
        }));
        ctx.stop();
    }

    /// Reassembles a fragmented message (RFC 6455 §5.4), bounded by the size limit.
    fn on_continuation(&mut self, item: Item, ctx: &mut Ctx) {
        let last = matches!(item, Item::Last(_));
        match item {
            Item::FirstText(bytes) => self.fragments = Some((false, BytesMut::from(&bytes[..]))),
            Item::FirstBinary(bytes) => self.fragments = Some((true, BytesMut::from(&bytes[..]))),
            Item::Continue(bytes) | Item::Last(bytes) => match &mut self.fragments {
                Some((_, so_far)) => so_far.extend_from_slice(&bytes),
                None => {
                    self.notice("error: continuation without a first frame".to_owned(), ctx);
                    return;
                }
            },
        }
        let size = self.fragments.as_ref().map_or(0, |(_, b)| b.len());
        if size > self.shared.options.max_message_size {
            self.fragments = None;
            self.too_big(ctx);
            return;
        }
        if last {
            if let Some((binary, bytes)) = self.fragments.take() {
                self.on_message(&bytes, binary, ctx);
            }
        }
    }
}

impl Actor for Session {
    type Context = Ctx;

    fn started(&mut self, ctx: &mut Ctx) {
        log::debug!("{}: connection {} opened", self.url, self.id);
        if let Some(interval) = self.shared.options.ping_interval {
            ctx.run_interval(interval, |act, ctx| {
                if !act.shared.is_silent() {
                    ctx.ping(PING_PAYLOAD);
                }
            });
        }
        if self.shared.options.auth_required {
            let challenge: String = rand::random::<[u8; 16]>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            self.challenge = Some(challenge.clone());
            self.send_frame(RelayFrame::Auth { challenge }, ctx);
        }
    }

    fn stopped(&mut self, _: &mut Ctx) {
        log::debug!("{}: connection {} closed", self.url, self.id);
        self.shared.unregister(self.id);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Session {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Ctx) {
        if self.shared.is_silent() {
            // Reading is paused (see `GatedPayload`); what was already decoded is ignored.
            return;
        }
        match msg {
            Ok(ws::Message::Text(text)) => self.on_message(text.as_bytes(), false, ctx),
            Ok(ws::Message::Binary(bytes)) => self.on_message(&bytes, true, ctx),
            Ok(ws::Message::Continuation(item)) => self.on_continuation(item, ctx),
            Ok(ws::Message::Ping(payload)) => self.send(ws::Message::Pong(payload), ctx),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                self.shared.update(|st| st.closes_received += 1);
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => self.too_big(ctx),
            Err(e) => {
                log::debug!("{}: {} broke the protocol: {e}", self.url, self.id);
                ctx.text(RelayFrame::Notice(format!("error: {e}")).as_json());
                ctx.close(Some(ws::CloseCode::Protocol.into()));
                ctx.stop();
            }
        }
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Ctx) {
        for frame in msg.0 {
            self.send_text(frame, ctx);
        }
    }
}

impl Handler<Control> for Session {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Ctx) {
        match msg {
            Control::Drop => {
                log::debug!("{}: dropping connection {}", self.url, self.id);
                ctx.stop();
            }
            Control::Close { code, reason } => {
                log::debug!("{}: closing connection {} with {code}", self.url, self.id);
                let description = (!reason.is_empty()).then_some(reason);
                ctx.close(Some(ws::CloseReason {
                    code: code.into(),
                    description,
                }));
                ctx.stop();
            }
            Control::RawText(text) => self.send(ws::Message::Text(text.into()), ctx),
            Control::RawBinary(bytes) => self.send(ws::Message::Binary(bytes), ctx),
        }
    }
}
