//! [`TestRelay`]: the handle a test holds; starting, URLs, publishing, and fault injection.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use bytes::Bytes;

use super::builder::TestRelayBuilder;
use super::server::ServerThread;
use super::session::{Control, Deliver, Session};
use super::state::{event_frame, EventPolicy, Options, Refusing, Shared};
use super::store::Insert;
use crate::protocol::Event;

/// How long a restart waits for the old connections to be gone before starting again.
const RESTART_DRAIN: Duration = Duration::from_secs(5);

/// A real Nostr relay running in the test process on `ws://127.0.0.1:PORT`, with fault
/// injection and inspection. See the [module docs](super) for an example.
///
/// # Lifecycle
///
/// [`start`](Self::start) (or [`builder`](Self::builder)`…start`) binds a free port on
/// 127.0.0.1 and runs an actix-web server with one worker on threads of its own, so the
/// relay works under `#[actix::test]` and from any other runtime. Every request path is
/// upgraded to a WebSocket; each path is a distinct relay with its own store unless
/// [`shared_store`](TestRelayBuilder::shared_store) is on. [`restart`](Self::restart) stops
/// the server (every connection dies) and starts it again on the same port. Dropping the
/// handle stops the server and waits for its thread (a few milliseconds).
///
/// Fault switches (`set_*`) take effect at once for every connection, present and future;
/// one-shot faults (`drop_connections`, `close_connections`, `send_raw_*`,
/// `send_forged_event`) act on the connections open at the call, return how many they
/// reached, and complete asynchronously on the relay's thread: await their effect on the
/// client side.
pub struct TestRelay {
    pub(super) shared: Arc<Shared>,
    server: Option<ServerThread>,
}

impl fmt::Debug for TestRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRelay")
            .field("url", &self.url())
            .field("connections", &self.connections_now())
            .finish()
    }
}

impl TestRelay {
    /// Starts a relay with default options.
    pub async fn start() -> io::Result<TestRelay> {
        TestRelayBuilder::new().start().await
    }

    /// A builder to set options before starting.
    pub fn builder() -> TestRelayBuilder {
        TestRelayBuilder::new()
    }

    pub(super) async fn start_with(
        options: Options,
        delay: Duration,
        never_eose: bool,
        never_ok: bool,
        policy: Option<EventPolicy>,
    ) -> io::Result<TestRelay> {
        let shared = Arc::new(Shared::new(options, delay, never_eose, never_ok, policy));
        let server = ServerThread::start(Arc::clone(&shared), 0).await?;
        Ok(TestRelay {
            shared,
            server: Some(server),
        })
    }

    /// The port the relay listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.shared.port()
    }

    /// `ws://127.0.0.1:PORT`: the root path's relay.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port())
    }

    /// `ws://127.0.0.1:PORT/path`: the relay at `path` (a leading `/` is added if missing).
    /// This is also the URL its NIP-42 `relay` tag must name.
    pub fn url_for(&self, path: &str) -> String {
        self.shared.url_for(path)
    }

    fn sessions(&self) -> Vec<Addr<Session>> {
        self.shared
            .read(|st| st.sessions.values().map(|s| s.addr.clone()).collect())
    }

    fn control_all(&self, make: impl Fn() -> Control) -> usize {
        let sessions = self.sessions();
        for addr in &sessions {
            addr.do_send(make());
        }
        sessions.len()
    }

    /// Drops every open connection: each session stops and the server closes its TCP
    /// connection (FIN) without sending a WebSocket close frame, as when a relay process
    /// dies. Returns how many connections were dropped.
    pub fn drop_connections(&self) -> usize {
        self.control_all(|| Control::Drop)
    }

    /// Closes every open connection with a close frame carrying `code` (for example 1012
    /// "service restart" or 1013 "try again later") and `reason`, then ends the TCP
    /// connection. Returns how many connections were closed.
    pub fn close_connections(&self, code: u16, reason: &str) -> usize {
        self.control_all(|| Control::Close {
            code,
            reason: reason.to_owned(),
        })
    }

    /// Makes the relay silent, or talkative again: while silent, TCP connections stay open
    /// but the relay stops reading them (so client pings get no pong and TCP backpressure
    /// builds), answers nothing, broadcasts nothing and sends no pings — a half-open relay.
    /// New connections are still upgraded, then silent too. When silence ends, frames that
    /// arrived meanwhile are read and answered; frames the relay would have sent are lost.
    /// A client that hangs up during the silence is noticed (and leaves
    /// [`connections_now`](Self::connections_now)) only when the silence ends.
    pub fn set_silent(&self, silent: bool) {
        self.shared.set_silent(silent);
    }

    /// Refuses new WebSocket upgrades with HTTP 503 while on; open connections are not
    /// touched.
    pub fn set_refusing(&self, on: bool) {
        let refusing = if on { Refusing::Yes } else { Refusing::No };
        self.shared.update(|st| st.refusing = Some(refusing));
    }

    /// Refuses new WebSocket upgrades with HTTP 503 for `duration` from now.
    pub fn refuse_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        self.shared
            .update(|st| st.refusing = Some(Refusing::Until(until)));
    }

    /// Stops the server (every connection dies without a close frame, the listener closes),
    /// then starts it again on the same port. With `keep_events` the stores survive,
    /// otherwise they start empty. The received log, counters and fault switches survive.
    pub async fn restart(&mut self, keep_events: bool) -> io::Result<()> {
        let port = self.port();
        log::debug!("test relay on port {port}: restarting");
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        // Sessions die with their worker; they unregister as they are dropped.
        if self.wait_for_connections(0, RESTART_DRAIN).await.is_err() {
            log::warn!("test relay on port {port}: old connections lingered after the stop");
            self.shared.update(|st| st.sessions.clear());
        }
        if !keep_events {
            self.shared.update(|st| st.stores.clear());
        }
        self.server = Some(ServerThread::start(Arc::clone(&self.shared), port).await?);
        Ok(())
    }

    /// Sends a text frame with exactly `text` to every open connection (it need not be
    /// JSON). Returns how many connections it was sent to.
    pub fn send_raw_text(&self, text: &str) -> usize {
        self.control_all(|| Control::RawText(text.to_owned()))
    }

    /// Sends a binary frame with `bytes` to every open connection. Returns how many
    /// connections it was sent to.
    pub fn send_raw_binary(&self, bytes: &[u8]) -> usize {
        let bytes = Bytes::copy_from_slice(bytes);
        self.control_all(|| Control::RawBinary(bytes.clone()))
    }

    /// Delays every frame the relay sends from now on by `delay` (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.set_delay(delay);
    }

    /// Sends `["EVENT", <sub id>, event]` for every open subscription of every connection,
    /// whether or not it matches, without verifying or storing it: for tests that a client
    /// drops events with a bad id or signature. Returns how many frames were sent.
    pub fn send_forged_event(&self, event: &Event) -> usize {
        let json = event.as_json();
        let targets: Vec<(Addr<Session>, Vec<String>)> = self.shared.read(|st| {
            st.sessions
                .values()
                .filter(|s| !s.subscriptions.is_empty())
                .map(|s| {
                    let frames = s
                        .subscriptions
                        .keys()
                        .map(|sub| event_frame(sub, &json))
                        .collect();
                    (s.addr.clone(), frames)
                })
                .collect()
        });
        let mut sent = 0;
        for (addr, frames) in targets {
            sent += frames.len();
            addr.do_send(Deliver(frames));
        }
        sent
    }

    /// Stops (or resumes) sending EOSE after stored events.
    pub fn set_never_eose(&self, on: bool) {
        self.shared.set_never_eose(on);
    }

    /// Stops (or resumes) answering EVENT with OK.
    pub fn set_never_ok(&self, on: bool) {
        self.shared.set_never_ok(on);
    }

    /// Replaces the event policy (see [`TestRelayBuilder::event_policy`]).
    pub fn set_event_policy(
        &self,
        policy: impl Fn(&Event) -> Result<(), String> + Send + Sync + 'static,
    ) {
        let policy: EventPolicy = Arc::new(policy);
        self.shared.update(|st| st.policy = Some(policy));
    }

    /// Removes the event policy: every valid event is accepted again.
    pub fn clear_event_policy(&self) {
        self.shared.update(|st| st.policy = None);
    }

    /// Stores `event` in the root path's store and sends it to every matching live
    /// subscription, as if a client had published it (without verifying it and without the
    /// event policy). Returns whether it was new (not a duplicate or outdated version).
    pub fn publish(&self, event: Event) -> bool {
        self.publish_at("/", event)
    }

    /// [`publish`](Self::publish) on the relay at `path`.
    pub fn publish_at(&self, path: &str, event: Event) -> bool {
        let scope = self.shared.scope(path);
        let (outcome, deliveries) = self.shared.store_and_route(&scope, event, None);
        deliveries.send_others();
        outcome.is_new()
    }

    /// Stores `events` in the root path's store without verifying or broadcasting them:
    /// fast set-up for benchmarks and large fixtures. Returns how many were stored.
    pub fn preload(&self, events: impl IntoIterator<Item = Event>) -> usize {
        self.preload_at("/", events)
    }

    /// [`preload`](Self::preload) into the store of `path`.
    pub fn preload_at(&self, path: &str, events: impl IntoIterator<Item = Event>) -> usize {
        let scope = self.shared.scope(path);
        self.shared.update(|st| {
            let store = st.stores.entry(scope).or_default();
            events
                .into_iter()
                .map(|e| store.insert(e).0)
                .filter(|o| matches!(o, Insert::Stored | Insert::Replaced(_)))
                .count()
        })
    }
}
