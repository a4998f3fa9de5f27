//! The actor that owns one relay's WebSocket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use actix_codec::Framed;
use actix_http::ws::Item;
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, CloseReason, Codec, Frame, Message as WsMessage};
use awc::BoxedSocket;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, StreamExt};

use super::backoff::Backoff;
use super::dedup::Dedup;
use super::error::RelayError;
use super::message::{DisconnectReason, MessageKind, RelayMessage};
use super::options::RelayOptions;
use super::outlet::{Batch, Outlet};
use super::requests::{AuthState, PendingCount, PendingPublish};
use super::stats::RelayStats;
use super::status::{RelayState, SharedState};
use super::subscriptions::{FetchEnd, FetchItem, SubTable, SubTarget};
use super::url::RelayUrl;
use crate::protocol::nip11::RelayInformation;
use crate::protocol::{ClientMessage, EventId, Keys, RelayFrame};

type WsSink = SinkWrite<WsMessage, SplitSink<Framed<BoxedSocket, Codec>, WsMessage>>;

/// State shared between a connection actor and the pool: counters and lifecycle state.
/// Lives across supervisor restarts and actor replacement.
#[derive(Debug)]
pub(crate) struct RelayShared {
    pub(crate) stats: RelayStats,
    pub(crate) state: SharedState,
    /// The relay's NIP-11 document, once fetched.
    pub(crate) info: Mutex<Option<RelayInformation>>,
}

impl RelayShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(RelayShared {
            stats: RelayStats::default(),
            state: SharedState::new(),
            info: Mutex::new(None),
        })
    }
}

/// Everything a connection actor is built from; `Send`, so it can be moved to another
/// arbiter's thread.
pub(crate) struct ConnectionParts {
    pub(crate) url: RelayUrl,
    pub(crate) options: RelayOptions,
    pub(crate) outlet: Outlet,
    pub(crate) shared: Arc<RelayShared>,
    pub(crate) dedup: Dedup,
    pub(crate) keys: Option<Keys>,
}

/// A message waiting to be written: its JSON, and the id of the event it publishes (so the
/// publish can learn it was sent, or be withdrawn on timeout).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) json: String,
    pub(crate) publishes: Option<EventId>,
}

/// One item of the socket's read stream, tagged with the connection generation it belongs
/// to, so that a late item of an old socket is never mistaken for the current one.
#[doc(hidden)]
pub enum Inbound {
    Frame(u64, Result<Frame, WsProtocolError>),
    End(u64),
}

/// The actor that keeps one relay connected.
///
/// Users do not start it themselves: the [`RelayPool`](crate::pool::RelayPool) starts one per
/// relay under an `actix::Supervisor` and talks to it for you.
///
/// # Lifecycle
///
/// * **Connecting** — on start it dials the relay with awc (HTTP/1.1 only: an h2 ALPN answer
///   would break the WebSocket upgrade), bounded by `connect_timeout`.
/// * **Connected** — it reports [`MessageKind::Connected`], sends the messages queued while
///   it was down (in order), pings every `ping_interval`, and turns every frame into a typed
///   [`RelayMessage`] for the user's recipients. Frames that do not parse become
///   [`MessageKind::Error`]; the connection stays up.
/// * **Reconnecting** — when the socket closes, errors, or stays silent past `ping_timeout`
///   after a ping, it reports [`MessageKind::Disconnected`] once, with the reason and the
///   delay before the next attempt, taken from the backoff list (with jitter). The list
///   starts over only after a connection stayed up for `stable_after`.
/// * **Removed** — after `RemoveRelay` (or pool shutdown) it sends a close frame, reports
///   `Disconnected` with reason [`DisconnectReason::Removed`], and never connects again.
///
/// # Supervision
///
/// If the actor stops, the supervisor restarts it with the same mailbox: queued messages,
/// options, counters and the outbound queue survive; the socket, timers and in-progress
/// reassembly do not, and it reconnects after the next backoff delay. If it panics, the pool
/// notices the dead mailbox and starts a replacement with the same counters.
///
/// # Backpressure
///
/// Events are handed to the user's actors with `do_send`, and every `delivery_window`-th one
/// with `send`, whose completion the connection waits for before reading the socket again.
/// A slow user actor therefore holds at most about one window of events per relay in memory;
/// nothing is dropped, the relay's TCP window fills instead.
pub struct RelayConnection {
    pub(crate) url: RelayUrl,
    pub(crate) options: RelayOptions,
    recipients: Vec<Recipient<RelayMessage>>,
    forwarder: Option<Recipient<Batch>>,
    /// Messages waiting to cross to the forwarder.
    batch: Vec<RelayMessage>,
    flush_timer: Option<SpawnHandle>,
    pub(crate) shared: Arc<RelayShared>,
    pub(crate) dedup: Dedup,
    pub(crate) keys: Option<Keys>,
    client: Option<awc::Client>,
    sink: Option<WsSink>,
    stream: Option<SpawnHandle>,
    ping_timer: Option<SpawnHandle>,
    retry_timer: Option<SpawnHandle>,
    /// Bumped for every new socket and on restart; stale callbacks compare and bail out.
    pub(crate) generation: u64,
    connecting: bool,
    backoff: Backoff,
    pub(crate) queue: VecDeque<Outgoing>,
    pub(crate) subs: SubTable,
    pub(crate) pending_ok: HashMap<EventId, PendingPublish>,
    pub(crate) pending_counts: HashMap<crate::protocol::SubscriptionId, PendingCount>,
    pub(crate) auth: AuthState,
    /// Numbers each `Publish` so its timeout resolves only its own caller.
    pub(crate) next_token: u64,
    close_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    info_attempted: bool,
    pub(crate) max_message_length: Option<usize>,
    pub(crate) removed: bool,
    restarted: bool,
    ever_connected: bool,
    outage_reported: bool,
    ping_sent: Option<Instant>,
    last_rx: Instant,
    last_resume: Instant,
    reassembly: Option<Reassembly>,
    since_ack: usize,
}

struct Reassembly {
    text: bool,
    buf: BytesMut,
}

impl RelayConnection {
    pub(crate) fn new(parts: ConnectionParts) -> Self {
        let ConnectionParts {
            url,
            options,
            outlet,
            shared,
            dedup,
            keys,
        } = parts;
        let (recipients, forwarder) = match outlet {
            Outlet::Direct(recipients) => (recipients, None),
            Outlet::Batched(forwarder) => (Vec::new(), Some(forwarder)),
        };
        let backoff = Backoff::new(
            options.backoff.clone(),
            options.jitter,
            options.stable_after,
        );
        let now = Instant::now();
        RelayConnection {
            url,
            options,
            recipients,
            forwarder,
            batch: Vec::new(),
            flush_timer: None,
            shared,
            dedup,
            keys,
            client: None,
            sink: None,
            stream: None,
            ping_timer: None,
            retry_timer: None,
            generation: 0,
            connecting: false,
            backoff,
            queue: VecDeque::new(),
            subs: SubTable::default(),
            pending_ok: HashMap::new(),
            pending_counts: HashMap::new(),
            auth: AuthState::default(),
            next_token: 0,
            close_waiters: Vec::new(),
            info_attempted: false,
            max_message_length: None,
            removed: false,
            restarted: false,
            ever_connected: false,
            outage_reported: false,
            ping_sent: None,
            last_rx: now,
            last_resume: now,
            reassembly: None,
            since_ack: 0,
        }
    }

    pub(crate) fn stats(&self) -> &RelayStats {
        &self.shared.stats
    }

    fn client(&mut self) -> awc::Client {
        self.client
            .get_or_insert_with(|| CLIENT.with(awc::Client::clone))
            .clone()
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.sink.is_some()
    }

    // ---- connecting ----------------------------------------------------------------------

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.removed || self.connecting || self.is_connected() {
            return;
        }
        self.retry_timer = None;
        self.connecting = true;
        self.generation += 1;
        let generation = self.generation;
        RelayStats::add(&self.stats().connect_attempts, 1);
        let attempt = self.stats().connect_attempts.load(Relaxed) as usize;
        self.shared.state.set(RelayState::Connecting { attempt });
        log::debug!("{}: connecting", self.url);

        let client = self.client();
        let fetch_info = !self.info_attempted
            && self
                .options
                .fetch_info
                .unwrap_or_else(|| self.url.is_secure());
        self.info_attempted = true;
        let http_url = self.url.http_url();
        let ws_url = self.url.as_str().to_owned();
        let max_frame = self.options.max_message_size;
        let timeout = self.options.connect_timeout;
        let fut = async move {
            let info = if fetch_info {
                fetch_relay_information(&client, &http_url).await
            } else {
                None
            };
            let request = client.ws(ws_url).max_frame_size(max_frame).connect();
            let result = match actix::clock::timeout(timeout, request).await {
                Ok(Ok((_response, framed))) => Ok(framed),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("timed out after {timeout:?}")),
            };
            (info, result)
        };
        ctx.spawn(fut.into_actor(self).map(move |(info, result), act, ctx| {
            if let Some(info) = info {
                act.apply_information(info);
            }
            if act.generation != generation {
                return;
            }
            act.connecting = false;
            if act.removed {
                return;
            }
            match result {
                Ok(framed) => act.on_connected(framed, ctx),
                Err(e) => act.on_connect_failed(e, ctx),
            }
        }));
    }

    fn on_connected(&mut self, framed: Framed<BoxedSocket, Codec>, ctx: &mut Context<Self>) {
        let generation = self.generation;
        let (sink, stream) = framed.split();
        let stream = stream
            .map(move |item| Inbound::Frame(generation, item))
            .chain(futures_util::stream::once(async move {
                Inbound::End(generation)
            }));
        self.stream = Some(ctx.add_stream(stream));
        self.sink = Some(SinkWrite::new(sink, ctx));
        let now = Instant::now();
        self.last_rx = now;
        self.ping_sent = None;
        self.reassembly = None;
        self.outage_reported = false;
        self.backoff.connected(now);
        let stats = self.stats();
        RelayStats::add(&stats.connects, 1);
        if self.ever_connected {
            RelayStats::add(&stats.reconnects, 1);
        }
        if let Ok(mut since) = stats.connected_since.lock() {
            *since = Some(SystemTime::now());
        }
        self.ever_connected = true;
        self.shared.state.set(RelayState::Connected);
        log::info!("{}: connected", self.url);

        let interval = self.options.ping_interval;
        self.ping_timer = Some(ctx.run_interval(interval, |act, ctx| act.send_ping(ctx)));

        self.auth = AuthState::default();
        self.deliver(MessageKind::Connected, ctx);
        self.send_pending_reqs();
        self.flush_queue();
    }

    /// Honours what a NIP-11 document declares.
    fn apply_information(&mut self, info: RelayInformation) {
        let limits = &info.limitation;
        self.subs.max_live = limits
            .max_subscriptions
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0);
        self.max_message_length = limits
            .max_message_length
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0);
        log::debug!(
            "{}: NIP-11: max_subscriptions {:?}, max_message_length {:?}, auth_required {:?}",
            self.url,
            self.subs.max_live,
            self.max_message_length,
            limits.auth_required
        );
        if let Ok(mut slot) = self.shared.info.lock() {
            *slot = Some(info);
        }
    }

    fn on_connect_failed(&mut self, error: String, ctx: &mut Context<Self>) {
        log::warn!("{}: connect failed: {error}", self.url);
        self.stats().record_error(&error);
        if self.outage_reported {
            let (next_retry, attempt) = self.schedule_retry(None, ctx);
            self.deliver(
                MessageKind::Error(RelayError::ConnectFailed {
                    reason: error,
                    attempt,
                    next_retry,
                }),
                ctx,
            );
        } else {
            self.schedule_retry(Some(DisconnectReason::ConnectFailed(error)), ctx);
        }
    }

    /// Picks the next backoff delay, records it, reports `Disconnected` if `reason` is given,
    /// and arms the timer. Returns the delay and the attempt it leads to.
    fn schedule_retry(
        &mut self,
        reason: Option<DisconnectReason>,
        ctx: &mut Context<Self>,
    ) -> (Duration, usize) {
        let (delay, attempt) = self
            .backoff
            .next_delay(Instant::now(), rand::random::<f64>());
        self.shared.state.set(RelayState::WaitingToRetry {
            attempt,
            at: Instant::now() + delay,
            delay,
        });
        if let Some(reason) = reason {
            self.outage_reported = true;
            log::info!("{}: disconnected ({reason}); retry in {delay:?}", self.url);
            self.deliver(
                MessageKind::Disconnected {
                    reason,
                    next_retry: Some(delay),
                },
                ctx,
            );
        }
        if let Some(old) = self.retry_timer.take() {
            ctx.cancel_future(old);
        }
        self.retry_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.retry_timer = None;
            act.connect(ctx);
        }));
        (delay, attempt)
    }

    /// Tears down the current socket (if any) without reporting anything.
    fn drop_socket(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.stream.take() {
            ctx.cancel_future(handle);
        }
        if let Some(handle) = self.ping_timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(mut sink) = self.sink.take() {
            sink.close();
        }
        self.reassembly = None;
        self.ping_sent = None;
        if let Ok(mut since) = self.stats().connected_since.lock() {
            *since = None;
        }
    }

    /// The socket is gone: report it once and schedule the next attempt.
    pub(crate) fn connection_lost(&mut self, reason: DisconnectReason, ctx: &mut Context<Self>) {
        if !self.is_connected() {
            return;
        }
        self.generation += 1;
        self.drop_socket(ctx);
        self.end_socket_bound_requests(FetchEnd::Disconnected);
        if self.removed {
            return;
        }
        self.schedule_retry(Some(reason), ctx);
    }

    /// What cannot survive the socket: fetches end for this relay, COUNTs fail, live REQs
    /// are no longer live (they are re-sent on reconnect).
    fn end_socket_bound_requests(&mut self, end: FetchEnd) {
        self.subs.mark_all_down();
        for (_, sub) in self.subs.take_fetches() {
            if let SubTarget::Fetch(tx) = sub.target {
                let _ = tx.send(FetchItem::Done(self.url.clone(), end.clone()));
            }
        }
        let error = if end == FetchEnd::ShuttingDown {
            super::requests::CountError::ShuttingDown
        } else {
            super::requests::CountError::Disconnected
        };
        for (_, pending) in self.pending_counts.drain() {
            pending.fail(error.clone());
        }
    }

    /// Closes the socket with a close frame, for good.
    pub(crate) fn shut_down(&mut self, reason: DisconnectReason, ctx: &mut Context<Self>) {
        if self.removed {
            return;
        }
        self.removed = true;
        self.generation += 1;
        self.connecting = false;
        if let Some(handle) = self.retry_timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.write(WsMessage::Close(Some(CloseReason {
                code: CloseCode::Normal,
                description: None,
            })));
        }
        self.drop_socket(ctx);
        let shutting_down = reason == DisconnectReason::Shutdown;
        let end = if shutting_down {
            FetchEnd::ShuttingDown
        } else {
            FetchEnd::Removed
        };
        self.end_socket_bound_requests(end.clone());
        for (_, sub) in std::mem::take(&mut self.subs.subs) {
            if let SubTarget::Fetch(tx) = sub.target {
                let _ = tx.send(FetchItem::Done(self.url.clone(), end.clone()));
            }
        }
        self.fail_all_publishes(shutting_down);
        self.queue.clear();
        self.stats().queued.store(0, Relaxed);
        self.shared.state.set(RelayState::Removed);
        log::info!("{}: {reason}", self.url);
        self.deliver(
            MessageKind::Disconnected {
                reason,
                next_retry: None,
            },
            ctx,
        );
    }

    // ---- writing -------------------------------------------------------------------------

    /// Writes one message now. False if there is no socket (or it refuses).
    fn write_now(&mut self, out: &Outgoing) -> bool {
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
            if let Some(pending) = self.pending_ok.get_mut(&id) {
                pending.sent = true;
            }
        }
        true
    }

    fn flush_queue(&mut self) {
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
        if self.removed {
            return Err(RelayError::Removed);
        }
        let json = message.as_json();
        if let Some(max) = self.max_message_length {
            if json.len() > max {
                return Err(RelayError::TooLargeForRelay {
                    size: json.len(),
                    max,
                });
            }
        }
        let publishes = match message {
            ClientMessage::Event(event) => Some(event.id),
            _ => None,
        };
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

    fn send_ping(&mut self, ctx: &mut Context<Self>) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let sent = Instant::now();
        if sink.write(WsMessage::Ping(Bytes::new())).is_err() {
            return;
        }
        RelayStats::add(&self.shared.stats.frames_out, 1);
        self.ping_sent = Some(sent);
        let generation = self.generation;
        let timeout = self.options.ping_timeout;
        ctx.run_later(timeout, move |act, ctx| {
            act.check_ping(generation, sent, ctx)
        });
    }

    fn check_ping(&mut self, generation: u64, sent: Instant, ctx: &mut Context<Self>) {
        if self.generation != generation || self.last_rx >= sent {
            return;
        }
        if self.last_resume > sent {
            // We were waiting for the user's actor, not reading: give the relay a fair chance.
            let timeout = self.options.ping_timeout;
            ctx.run_later(timeout, move |act, ctx| {
                act.check_ping(generation, act.last_resume, ctx)
            });
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

    fn on_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        self.last_rx = Instant::now();
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

    fn on_binary(&mut self, len: usize, ctx: &mut Context<Self>) {
        RelayStats::add(&self.shared.stats.bytes_in, len as u64);
        self.report_error(RelayError::BinaryFrame { len }, ctx);
    }

    fn on_continuation(&mut self, item: Item, ctx: &mut Context<Self>) {
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

    fn on_text(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        RelayStats::add(&self.shared.stats.bytes_in, bytes.len() as u64);
        match RelayFrame::from_slice(&bytes) {
            Ok(frame) => self.on_relay_frame(frame, ctx),
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

    // ---- delivering ----------------------------------------------------------------------

    /// Hands one message to the user: every `delivery_window`-th message is sent with
    /// `send` and the actor waits (socket unread) until the user has handled it.
    ///
    /// Across threads, messages go in batches: events collect until the batch holds
    /// `delivery_window` messages or [`FLUSH_DELAY`] passes; any other message (EOSE, OK,
    /// Disconnected, …) flushes at once, so only events ever wait.
    pub(crate) fn deliver(&mut self, kind: MessageKind, ctx: &mut Context<Self>) {
        let message = RelayMessage {
            relay: self.url.clone(),
            kind,
        };
        if self.forwarder.is_some() {
            let urgent = !matches!(message.kind, MessageKind::Event { .. });
            self.batch.push(message);
            self.since_ack += 1;
            if urgent || self.batch.len() >= self.options.delivery_window {
                self.flush_batch(ctx);
            } else if self.flush_timer.is_none() {
                self.flush_timer = Some(ctx.run_later(FLUSH_DELAY, |act, ctx| {
                    act.flush_timer = None;
                    act.flush_batch(ctx);
                }));
            }
            return;
        }
        if self.recipients.is_empty() {
            return;
        }
        self.since_ack += 1;
        if self.since_ack < self.options.delivery_window {
            let (last, rest) = match self.recipients.split_last() {
                Some(split) => split,
                None => return,
            };
            for r in rest {
                r.do_send(message.clone());
            }
            last.do_send(message);
            return;
        }
        self.since_ack = 0;
        let window = self.options.delivery_window as u64;
        self.shared.stats.in_flight.store(window, Relaxed);
        let requests: Vec<_> = self
            .recipients
            .iter()
            .map(|r| r.send(message.clone()))
            .collect();
        let wait = futures_util::future::join_all(requests);
        ctx.wait(wait.into_actor(self).map(|results, act, _ctx| {
            act.resume_after_wait();
            let mut index = 0;
            act.recipients.retain(|_| {
                let alive = !matches!(results.get(index), Some(Err(MailboxError::Closed)));
                index += 1;
                alive
            });
        }));
    }

    /// Sends the collected batch to the forwarder; waits for it (socket unread) when a
    /// whole window has gone out since the last wait.
    fn flush_batch(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.flush_timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(forwarder) = self.forwarder.clone() else {
            return;
        };
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(
            &mut self.batch,
            Vec::with_capacity(self.options.delivery_window.min(256)),
        );
        if self.since_ack < self.options.delivery_window {
            forwarder.do_send(Batch(batch));
            return;
        }
        self.shared
            .stats
            .in_flight
            .store(self.since_ack as u64, Relaxed);
        self.since_ack = 0;
        ctx.wait(
            forwarder
                .send(Batch(batch))
                .into_actor(self)
                .map(|result, act, _ctx| {
                    act.resume_after_wait();
                    if result.is_err() {
                        // The forwarder is gone (the pool stopped): nobody is listening.
                        act.forwarder = None;
                    }
                }),
        );
    }

    fn resume_after_wait(&mut self) {
        self.last_resume = Instant::now();
        self.shared.stats.in_flight.store(0, Relaxed);
    }
}

/// The longest an event waits for its batch to fill before crossing threads anyway.
const FLUSH_DELAY: Duration = Duration::from_millis(1);

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(128)]);
    text.into_owned()
}

/// GETs the relay's NIP-11 document; `None` on any failure (logged): the relay is then used
/// without its declared limits.
async fn fetch_relay_information(client: &awc::Client, http_url: &str) -> Option<RelayInformation> {
    let request = client
        .get(http_url)
        .insert_header(("Accept", "application/nostr+json"))
        .timeout(super::options::NIP11_TIMEOUT)
        .send();
    let mut response = match request.await {
        Ok(r) => r,
        Err(e) => {
            log::debug!("{http_url}: NIP-11 request failed: {e}");
            return None;
        }
    };
    if !response.status().is_success() {
        log::debug!("{http_url}: NIP-11 answered {}", response.status());
        return None;
    }
    let body = response.body().limit(256 * 1024).await.ok()?;
    let text = std::str::from_utf8(&body).ok()?;
    match RelayInformation::from_json(text) {
        Ok(info) => Some(info),
        Err(e) => {
            log::debug!("{http_url}: NIP-11 document unreadable: {e}");
            None
        }
    }
}

thread_local! {
    /// One awc client per arbiter thread, shared by its connections (awc clients are not
    /// `Send`). Building one per connection would copy the TLS root store and connector
    /// state into every connection: tens of KiB each.
    static CLIENT: awc::Client = build_client();
}

/// The shared client: HTTP/1.1 only, because an `h2` ALPN answer makes the WebSocket
/// upgrade fail; no connection limit, because awc's connector holds a permit per open
/// WebSocket and would cap a shared client at 100 (notes/actix-awc.md). Handshakes are
/// bounded per relay by `connect_timeout` around the connect future, so the client's own
/// timeout only has to be out of the way.
fn build_client() -> awc::Client {
    #[cfg(feature = "rustls")]
    {
        // awc's rustls config needs a process-wide crypto provider; install ring once.
        // An error only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0))
        .max_http_version(awc::http::Version::HTTP_11)
        .timeout(Duration::from_secs(3600))
        .finish()
}

impl Actor for RelayConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.removed {
            return;
        }
        if self.restarted {
            // Back from a supervisor restart: wait one backoff step before dialling, so a
            // relay that makes us fail at once cannot drive a tight loop.
            self.schedule_retry(None, ctx);
        } else {
            self.connect(ctx);
        }
    }
}

impl Supervised for RelayConnection {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        log::warn!("{}: connection actor restarting", self.url);
        // Everything spawned in the context is gone; drop what pointed into it.
        self.generation += 1;
        self.sink = None;
        self.stream = None;
        self.ping_timer = None;
        self.retry_timer = None;
        self.connecting = false;
        self.reassembly = None;
        self.ping_sent = None;
        self.since_ack = 0;
        self.flush_timer = None;
        self.end_socket_bound_requests(FetchEnd::Disconnected);
        self.restarted = true;
        if !self.removed {
            self.outage_reported = true;
            self.shared.state.set(RelayState::Connecting { attempt: 0 });
        }
    }
}

impl StreamHandler<Inbound> for RelayConnection {
    fn handle(&mut self, item: Inbound, ctx: &mut Context<Self>) {
        match item {
            Inbound::Frame(generation, _) | Inbound::End(generation)
                if generation != self.generation => {}
            Inbound::Frame(_, Ok(frame)) => self.on_frame(frame, ctx),
            Inbound::Frame(_, Err(error)) => {
                let text = error.to_string();
                self.stats().record_error(&text);
                let close = if matches!(error, WsProtocolError::Overflow) {
                    CloseCode::Size
                } else {
                    CloseCode::Protocol
                };
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(WsMessage::Close(Some(close.into())));
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

impl WriteHandler<WsProtocolError> for RelayConnection {
    fn error(&mut self, err: WsProtocolError, ctx: &mut Context<Self>) -> Running {
        log::warn!("{}: write failed: {err}", self.url);
        self.stats().record_error(&err.to_string());
        self.connection_lost(DisconnectReason::Error(err.to_string()), ctx);
        Running::Continue
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The default stops the actor; a closed sink is handled by the read side. A shutdown
        // waiting for its close frame to leave learns it here.
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

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
        let had_socket = self.is_connected();
        self.shut_down(msg.0, ctx);
        if !had_socket {
            return Box::pin(async {});
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.close_waiters.push(tx);
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
