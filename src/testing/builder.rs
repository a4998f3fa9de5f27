//! Options of the test relay, set through [`TestRelayBuilder`].

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::relay::TestRelay;
use super::state::{EventPolicy, Options};
use crate::protocol::Event;

/// Default largest message the relay accepts (and so, in practice, sends): 16 MiB, far
/// above any real event (contact lists reach a few hundred KiB), so that tests of big events
/// are limited by the client, not by the relay. Real relays use 128 KiB to 5 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Default number of subscriptions one connection may hold open: generous, so a pool under
/// test never hits it unless a test sets a lower limit (strfry's default is 20).
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1_000;

/// Default number of filters in one REQ or COUNT.
pub const DEFAULT_MAX_FILTERS: usize = 100;

/// Configures and starts a [`TestRelay`].
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use std::time::Duration;
/// use actix_nostr::testing::TestRelay;
///
/// let relay = TestRelay::builder()
///     .auth_required(true)
///     .max_subscriptions(10)
///     .event_policy(|event| {
///         if event.content.contains("spam") {
///             Err("blocked: no spam".to_owned())
///         } else {
///             Ok(())
///         }
///     })
///     .ping_clients(Duration::from_secs(1))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct TestRelayBuilder {
    options: Options,
    delay: Duration,
    never_eose: bool,
    never_ok: bool,
    policy: Option<EventPolicy>,
}

impl Default for TestRelayBuilder {
    fn default() -> Self {
        TestRelayBuilder {
            options: Options {
                auth_required: false,
                shared_store: false,
                max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
                max_filters: DEFAULT_MAX_FILTERS,
                ping_interval: None,
                record_frames: true,
            },
            delay: Duration::ZERO,
            never_eose: false,
            never_ok: false,
            policy: None,
        }
    }
}

impl fmt::Debug for TestRelayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRelayBuilder")
            .field("options", &self.options)
            .field("delay", &self.delay)
            .field("never_eose", &self.never_eose)
            .field("never_ok", &self.never_ok)
            .field("event_policy", &self.policy.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl TestRelayBuilder {
    /// A builder with every option at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires NIP-42 authentication: on connect the relay sends `["AUTH", <challenge>]`;
    /// until the client answers with a valid kind-22242 event for this relay's URL
    /// (`ws://127.0.0.1:PORT/path`) and that challenge, REQ and COUNT get
    /// `CLOSED "auth-required: …"` and EVENT gets `OK false "auth-required: …"`.
    ///
    /// Defaults to `false` (no challenge is sent, and AUTH messages are refused).
    pub fn auth_required(mut self, on: bool) -> Self {
        self.options.auth_required = on;
        self
    }

    /// Makes every path share one store (and one broadcast scope): `/a` and `/b` become
    /// two URLs of the same relay.
    ///
    /// Defaults to `false`: each path is a distinct relay with its own store.
    pub fn shared_store(mut self, on: bool) -> Self {
        self.options.shared_store = on;
        self
    }

    /// The largest frame (and reassembled fragmented message) accepted, in bytes. A larger
    /// one gets `NOTICE "error: …"` and a close with code 1009.
    ///
    /// Defaults to [`DEFAULT_MAX_MESSAGE_SIZE`] (16 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.options.max_message_size = bytes;
        self
    }

    /// How many subscriptions one connection may hold open; a REQ beyond it gets
    /// `CLOSED "error: too many subscriptions"` (a REQ replacing an open one always passes).
    ///
    /// Defaults to [`DEFAULT_MAX_SUBSCRIPTIONS`] (1,000).
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.options.max_subscriptions = n;
        self
    }

    /// How many filters one REQ or COUNT may carry; more get `CLOSED "error: too many
    /// filters"`.
    ///
    /// Defaults to [`DEFAULT_MAX_FILTERS`] (100).
    pub fn max_filters(mut self, n: usize) -> Self {
        self.options.max_filters = n;
        self
    }

    /// Decides which valid events are accepted: `Err(message)` answers
    /// `["OK", id, false, message]`, so the message should carry a NIP-01 prefix
    /// (`"blocked: …"`, `"rate-limited: …"`, `"restricted: …"`). It runs after the id and
    /// signature checks and before storing. Can be changed later with
    /// [`TestRelay::set_event_policy`].
    ///
    /// Defaults to accepting every valid event.
    pub fn event_policy(
        mut self,
        policy: impl Fn(&Event) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Never sends EOSE: stored events are sent, then nothing marks their end. Can be
    /// changed later with [`TestRelay::set_never_eose`].
    ///
    /// Defaults to `false`.
    pub fn never_eose(mut self, on: bool) -> Self {
        self.never_eose = on;
        self
    }

    /// Never answers EVENT with OK (events are still stored and broadcast). AUTH is still
    /// answered. Can be changed later with [`TestRelay::set_never_ok`].
    ///
    /// Defaults to `false`.
    pub fn never_ok(mut self, on: bool) -> Self {
        self.never_ok = on;
        self
    }

    /// Delays every frame the relay sends (answers, live events, pongs, raw frames) by
    /// `delay`, keeping their order. Can be changed later with [`TestRelay::set_delay`].
    ///
    /// Defaults to no delay.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Pings every client every `interval` (payload `"actix-nostr test relay"`), as some
    /// relays do to detect dead clients. The relay does not drop clients that fail to pong.
    ///
    /// Defaults to never pinging.
    pub fn ping_clients(mut self, interval: Duration) -> Self {
        self.options.ping_interval = Some(interval).filter(|d| !d.is_zero());
        self
    }

    /// Keeps every frame clients send, for [`TestRelay::received`] and the waits on frames.
    /// Turn it off for long benchmarks, where the log would only grow.
    ///
    /// Defaults to `true`.
    pub fn record_frames(mut self, on: bool) -> Self {
        self.options.record_frames = on;
        self
    }

    /// Starts the relay on 127.0.0.1 with a port chosen by the OS, on its own thread.
    pub async fn start(self) -> io::Result<TestRelay> {
        TestRelay::start_with(
            self.options,
            self.delay,
            self.never_eose,
            self.never_ok,
            self.policy,
        )
        .await
    }
}
