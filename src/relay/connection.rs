//! The actor that owns one relay's WebSocket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix::io::SinkWrite;
use actix::prelude::*;
use actix_codec::Framed;
use awc::ws::{CloseCode, CloseReason, Codec, Message as WsMessage};
use awc::BoxedSocket;
use futures_util::stream::StreamExt;

use super::auth::AuthState;
use super::backoff::Backoff;
use super::closing_sink::ClosingSink;
use super::deadlines::Deadlines;
use super::dedup::{Dedup, RecentIds, RECENTLY_SENT};
use super::error::RelayError;
use super::framing;
use super::message::{DisconnectReason, MessageKind, RelayMessage};
use super::options::RelayOptions;
use super::outlet::{Batch, Outlet, Unacked};
use super::requests::{PendingCount, PendingPublish};
use super::socket::{Inbound, Reassembly};
use super::stats::RelayStats;
use super::status::{RelayState, SharedState};
use super::subscriptions::{FetchEnd, FetchItem, SubTable, SubTarget};
use super::url::RelayUrl;
use crate::protocol::nip11::RelayInformation;
use crate::protocol::{EventId, Keys};

type WsSink = SinkWrite<WsMessage, ClosingSink>;

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
/// On the user's own thread, events are handed over with `do_send`, and every
/// `delivery_window`-th one with `send`. From another arbiter, events cross in batches to a
/// forwarder on the pool's thread. Either way, once a window is out the connection stops
/// reading the socket until the user has handled the window before it: a slow user actor
/// always has the next window queued, holds at most about two windows of events per relay
/// in memory, and nothing is dropped; the relay's TCP window fills instead.
pub struct RelayConnection {
    pub(super) url: RelayUrl,
    pub(super) options: RelayOptions,
    pub(super) recipients: Vec<Recipient<RelayMessage>>,
    pub(super) forwarder: Option<Recipient<Batch>>,
    /// Messages waiting to cross to the forwarder.
    pub(super) batch: Vec<RelayMessage>,
    /// The last window handed to the user (or the forwarder), not yet waited for.
    pub(super) unacked: Option<Unacked>,
    pub(super) flush_timer: Option<SpawnHandle>,
    pub(super) shared: Arc<RelayShared>,
    pub(super) dedup: Dedup,
    pub(super) keys: Option<Keys>,
    pub(super) client: Option<awc::Client>,
    pub(super) sink: Option<WsSink>,
    /// The same write half, for a close frame from `Drop` (System or arbiter stopped).
    pub(super) close_on_drop: Option<ClosingSink>,
    pub(super) stream: Option<SpawnHandle>,
    pub(super) ping_timer: Option<SpawnHandle>,
    pub(super) retry_timer: Option<SpawnHandle>,
    /// Bumped for every new socket and on restart; stale callbacks compare and bail out.
    pub(super) generation: u64,
    pub(super) connecting: bool,
    pub(super) backoff: Backoff,
    pub(super) queue: VecDeque<Outgoing>,
    pub(super) subs: SubTable,
    pub(super) pending_ok: HashMap<EventId, PendingPublish>,
    pub(super) pending_counts: HashMap<crate::protocol::SubscriptionId, PendingCount>,
    pub(super) auth: AuthState,
    /// Timeouts of publishes and counts, behind one timer.
    pub(super) deadlines: Deadlines,
    pub(super) deadline_timer: Option<SpawnHandle>,
    /// Events written lately, to tell an `OK` for them from an unsolicited one.
    pub(super) recently_sent: RecentIds,
    /// Numbers each `Publish` so its timeout resolves only its own caller.
    pub(super) next_token: u64,
    pub(super) info_attempted: bool,
    pub(super) max_message_length: Option<usize>,
    pub(super) removed: bool,
    pub(super) restarted: bool,
    pub(super) ever_connected: bool,
    pub(super) outage_reported: bool,
    pub(super) ping_sent: Option<Instant>,
    /// Frames read, on every socket: the ping check compares counts, not clock readings,
    /// so that reading a frame costs no clock call.
    pub(super) frames_rx: u64,
    pub(super) last_resume: Instant,
    pub(super) reassembly: Option<Reassembly>,
    pub(super) since_ack: usize,
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
            unacked: None,
            flush_timer: None,
            shared,
            dedup,
            keys,
            client: None,
            sink: None,
            close_on_drop: None,
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
            deadlines: Deadlines::default(),
            deadline_timer: None,
            recently_sent: RecentIds::new(RECENTLY_SENT),
            next_token: 0,
            info_attempted: false,
            max_message_length: None,
            removed: false,
            restarted: false,
            ever_connected: false,
            outage_reported: false,
            ping_sent: None,
            frames_rx: 0,
            last_resume: now,
            reassembly: None,
            since_ack: 0,
        }
    }

    pub(crate) fn stats(&self) -> &RelayStats {
        &self.shared.stats
    }

    pub(super) fn client(&mut self) -> awc::Client {
        #[cfg(feature = "rustls")]
        let tls = self.options.tls.clone();
        self.client
            .get_or_insert_with(|| {
                #[cfg(feature = "rustls")]
                if let Some(tls) = tls {
                    return tls_client(tls);
                }
                CLIENT.with(awc::Client::clone)
            })
            .clone()
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.sink.is_some()
    }

    // ---- connecting ----------------------------------------------------------------------

    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn on_connected(
        &mut self,
        framed: Framed<BoxedSocket, Codec>,
        ctx: &mut Context<Self>,
    ) {
        let generation = self.generation;
        let (stream, sink) = framing::split(framed);
        let stream = stream
            .map(move |item| Inbound::Frame(generation, item))
            .chain(futures_util::stream::once(async move {
                Inbound::End(generation)
            }));
        self.stream = Some(ctx.add_stream(stream));
        let sink = ClosingSink::new(sink, generation);
        self.close_on_drop = Some(sink.clone());
        self.sink = Some(SinkWrite::new(sink, ctx));
        let now = Instant::now();
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
    pub(super) fn apply_information(&mut self, info: RelayInformation) {
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

    pub(super) fn on_connect_failed(&mut self, error: String, ctx: &mut Context<Self>) {
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
    pub(super) fn schedule_retry(
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
    pub(super) fn drop_socket(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.stream.take() {
            ctx.cancel_future(handle);
        }
        if let Some(handle) = self.ping_timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(mut sink) = self.sink.take() {
            sink.close();
        }
        self.close_on_drop = None;
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
    /// are no longer live (they are re-sent on reconnect), unanswered publishes are queued
    /// again.
    pub(super) fn end_socket_bound_requests(&mut self, end: FetchEnd) {
        self.subs.mark_all_down();
        for (_, sub) in self.subs.take_fetches() {
            if let SubTarget::Fetch(tx) = sub.target {
                let _ = tx.send(FetchItem::Done(self.url.clone(), end.clone()));
            }
        }
        let error = if end == FetchEnd::ShuttingDown {
            super::outcome::CountError::ShuttingDown
        } else {
            super::outcome::CountError::Disconnected
        };
        for (_, pending) in self.pending_counts.drain() {
            pending.fail(error.clone());
        }
        self.requeue_unanswered_publishes();
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

/// A shared client over `$connector`, which must offer only HTTP/1.1 by ALPN (an `h2` answer
/// makes the WebSocket upgrade fail): no connection limit, because awc's connector holds a
/// permit per open WebSocket and would cap a shared client at 100 (notes/actix-awc.md).
/// Handshakes are bounded per relay by `connect_timeout` around the connect future, so the
/// client's own timeout only has to be out of the way. Not `ClientBuilder::max_http_version`:
/// it rebuilds the connector's TLS configuration from awc's default roots, replacing one set
/// with `Connector::rustls_0_23`. (A macro: awc's connector types are generic over a
/// connector service whose bounds would take more lines than this.)
macro_rules! build_client {
    ($connector:expr) => {{
        install_crypto_provider();
        awc::Client::builder()
            .connector($connector.limit(0))
            .timeout(Duration::from_secs(3600))
            .finish()
    }};
}

thread_local! {
    /// One awc client per arbiter thread, shared by its connections (awc clients are not
    /// `Send`). Building one per connection would copy the TLS root store and connector
    /// state into every connection: tens of KiB each.
    static CLIENT: awc::Client =
        build_client!(awc::Connector::new().max_http_version(awc::http::Version::HTTP_11));

    /// The clients for relays with their own TLS configuration
    /// ([`RelayOptions::tls_config`](super::RelayOptions::tls_config)), one per distinct
    /// configuration and thread.
    #[cfg(feature = "rustls")]
    static TLS_CLIENTS: std::cell::RefCell<Vec<(super::options::TlsConfig, awc::Client)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's client for a TLS configuration: built on first use, with ALPN limited to
/// HTTP/1.1.
#[cfg(feature = "rustls")]
fn tls_client(tls: super::options::TlsConfig) -> awc::Client {
    TLS_CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, client)) = clients.iter().find(|(c, _)| *c == tls) {
            return client.clone();
        }
        let mut config = (*tls.0).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = build_client!(awc::Connector::new().rustls_0_23(std::sync::Arc::new(config)));
        clients.push((tls, client.clone()));
        client
    })
}

/// awc's rustls config needs a process-wide crypto provider; install ring once. An error
/// only means one is installed already.
fn install_crypto_provider() {
    #[cfg(feature = "rustls")]
    {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Actor for RelayConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // After a supervisor restart, timeouts still waiting need their timer again.
        self.arm_deadline_timer(ctx);
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

impl Drop for RelayConnection {
    fn drop(&mut self) {
        // Dropped with a socket still open: its System or arbiter stopped, and no future
        // runs any more. A close frame, written synchronously (best effort).
        if let Some(sink) = self.close_on_drop.take() {
            sink.close_now();
        }
    }
}

impl Supervised for RelayConnection {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        log::warn!("{}: connection actor restarting", self.url);
        // Everything spawned in the context is gone; drop what pointed into it.
        self.generation += 1;
        self.sink = None;
        self.close_on_drop = None;
        self.stream = None;
        self.ping_timer = None;
        self.retry_timer = None;
        self.connecting = false;
        self.reassembly = None;
        self.ping_sent = None;
        self.since_ack = 0;
        self.flush_timer = None;
        self.deadline_timer = None;
        self.deadlines.armed_for = None;
        self.end_socket_bound_requests(FetchEnd::Disconnected);
        self.restarted = true;
        if !self.removed {
            self.outage_reported = true;
            self.shared.state.set(RelayState::Connecting { attempt: 0 });
        }
    }
}
