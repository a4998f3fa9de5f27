//! Per-relay options.

use std::time::Duration;

/// The reconnect delays, in order; the last one repeats. Quick first retries catch a blip,
/// then the delays grow so that a relay that is down is not hammered.
pub const DEFAULT_BACKOFF: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
];
/// ±20 % random jitter on each delay, so many clients cut off together don't return together.
pub const DEFAULT_JITTER: f64 = 0.2;
/// A connection that stays up this long counts as healthy and the backoff list starts over;
/// a relay that accepts and then drops at once keeps climbing the list instead.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(10);
/// How long the TCP + TLS + WebSocket handshake may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to ping. Below the 60 s idle timeouts common in proxies and load balancers.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// How long to wait for any frame after a ping before declaring the socket dead.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message accepted from a relay. awc's default of 64 KiB breaks on real relays
/// (follow lists exceed it); 16 MiB covers every event seen in the wild.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Messages kept while the relay is not connected, sent in order once it is.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Events handed to the user's actor before the connection waits for it to catch up
/// (backpressure); two windows at most are in flight per relay, ~0.5 MiB of events at 256.
/// Across threads the window costs ~1 % throughput at 256 and ~6 % at 64
/// (notes/performance-facts.md); under a slow consumer, 256 halves the connection's CPU
/// per event against 64 (fewer stops and resumes: docs/performance.md).
pub const DEFAULT_DELIVERY_WINDOW: usize = 256;

/// On reconnect, subscriptions ask again from the newest event already seen minus this much,
/// so events that reached the relay slightly out of order are not missed; the de-dup
/// memory absorbs the overlap.
pub const DEFAULT_RESUBSCRIBE_OVERLAP: Duration = Duration::from_secs(10);
/// How long to wait for a relay's NIP-11 document before connecting without it.
pub const NIP11_TIMEOUT: Duration = Duration::from_secs(5);

/// When to answer a relay's NIP-42 `AUTH` challenge (only with keys on the pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthPolicy {
    /// As soon as the challenge arrives. The default.
    #[default]
    Eager,
    /// Only after the relay refused something with `auth-required:`; then the refused REQ or
    /// EVENT is retried once.
    Lazy,
    /// Never; challenges are only reported to the user.
    Never,
}

/// Options of one relay connection: a builder with documented defaults.
///
/// ```
/// use std::time::Duration;
/// use actix_nostr::relay::RelayOptions;
/// let opts = RelayOptions::new()
///     .backoff(vec![Duration::from_millis(100), Duration::from_secs(1)])
///     .ping_interval(Duration::from_secs(5))
///     .write(false);
/// assert!(opts.is_read());
/// assert!(!opts.is_write());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RelayOptions {
    pub(crate) backoff: Vec<Duration>,
    pub(crate) jitter: f64,
    pub(crate) stable_after: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) delivery_window: usize,
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) verify_events: bool,
    pub(crate) auth: AuthPolicy,
    pub(crate) resubscribe_overlap: Duration,
    pub(crate) fetch_info: Option<bool>,
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<TlsConfig>,
}

/// A rustls client configuration for `wss://`, compared by identity: relays given the same
/// `Arc` share one HTTP client per thread.
#[cfg(feature = "rustls")]
#[derive(Debug, Clone)]
pub(crate) struct TlsConfig(pub(crate) std::sync::Arc<rustls::ClientConfig>);

#[cfg(feature = "rustls")]
impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            backoff: DEFAULT_BACKOFF.to_vec(),
            jitter: DEFAULT_JITTER,
            stable_after: DEFAULT_STABLE_AFTER,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            delivery_window: DEFAULT_DELIVERY_WINDOW,
            read: true,
            write: true,
            verify_events: true,
            auth: AuthPolicy::Eager,
            resubscribe_overlap: DEFAULT_RESUBSCRIBE_OVERLAP,
            fetch_info: None,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }
}

impl RelayOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delays before reconnect attempts 1, 2, 3, …; the last repeats. An empty list is
    /// taken as the default. Defaults to 500 ms, 1 s, 5 s, 10 s, 30 s.
    pub fn backoff(mut self, delays: Vec<Duration>) -> Self {
        self.backoff = if delays.is_empty() {
            DEFAULT_BACKOFF.to_vec()
        } else {
            delays
        };
        self
    }

    /// Random jitter as a fraction of each delay, clamped to 0.0..=1.0. Defaults to 0.2.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How long a connection must stay up before the backoff list starts over.
    /// Defaults to 10 s.
    pub fn stable_after(mut self, d: Duration) -> Self {
        self.stable_after = d;
        self
    }

    /// Limit on the whole connection handshake. Defaults to 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How often to send a WebSocket ping. Defaults to 25 s.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d.max(Duration::from_millis(10));
        self
    }

    /// How long after a ping, with no frame at all from the relay, the socket counts as
    /// dead (half-open TCP) and is replaced. Defaults to 10 s.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d.max(Duration::from_millis(10));
        self
    }

    /// Largest message, in bytes, accepted from the relay (after reassembling continuation
    /// frames). Larger ones close the connection with an error. Defaults to 16 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1024);
        self
    }

    /// How many outgoing messages wait while the relay is not connected; beyond it, sends
    /// fail with a "queue full" error. Defaults to 1024.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// How many events are handed to the user's actor before the connection stops reading
    /// the socket and waits for the actor to catch up. At least 1. Defaults to
    /// [`DEFAULT_DELIVERY_WINDOW`] (256).
    pub fn delivery_window(mut self, n: usize) -> Self {
        self.delivery_window = n.max(1);
        self
    }

    /// Whether subscriptions and fetches use this relay. Defaults to true.
    pub fn read(mut self, on: bool) -> Self {
        self.read = on;
        self
    }

    /// Whether publishes go to this relay. Defaults to true.
    pub fn write(mut self, on: bool) -> Self {
        self.write = on;
        self
    }

    /// Whether events are checked (id recomputed, BIP-340 signature verified) before
    /// delivery. Turn off only for a relay you trust completely. Defaults to true.
    pub fn verify_events(mut self, on: bool) -> Self {
        self.verify_events = on;
        self
    }

    /// When to answer NIP-42 challenges (with keys on the pool). Defaults to
    /// [`AuthPolicy::Eager`].
    pub fn auth(mut self, policy: AuthPolicy) -> Self {
        self.auth = policy;
        self
    }

    /// How far before the newest event already seen a resubscription asks again.
    /// Defaults to 10 s.
    pub fn resubscribe_overlap(mut self, d: Duration) -> Self {
        self.resubscribe_overlap = d;
        self
    }

    /// Whether to fetch the relay's NIP-11 information document (HTTP, `Accept:
    /// application/nostr+json`) before connecting, and honour its limits
    /// (`max_message_length`, `max_subscriptions`, `auth_required`). Defaults to on for
    /// `wss://` relays and off for `ws://` ones.
    pub fn fetch_info(mut self, on: bool) -> Self {
        self.fetch_info = Some(on);
        self
    }

    /// The TLS settings for `wss://`: which certificates to trust (a private relay's own
    /// certificate authority, say), client certificates, and so on. By default the Mozilla
    /// root certificates compiled in (`webpki-roots`) are trusted, and nothing else.
    ///
    /// The configuration's ALPN protocols are replaced by `http/1.1` (an `h2` answer would
    /// break the WebSocket upgrade). Relays given the same `Arc` share one HTTP client per
    /// thread; each distinct `Arc` costs one more (built once, kept for the thread's life),
    /// so build the configuration once and clone the `Arc`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use actix_nostr::relay::RelayOptions;
    /// use actix_nostr::rustls::{ClientConfig, RootCertStore};
    ///
    /// # fn private_ca() -> Vec<actix_nostr::rustls::pki_types::CertificateDer<'static>> { Vec::new() }
    /// let mut roots = RootCertStore::empty();
    /// for cert in private_ca() {
    ///     roots.add(cert).expect("a valid CA certificate");
    /// }
    /// let provider = Arc::new(actix_nostr::rustls::crypto::ring::default_provider());
    /// let config = ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .expect("TLS 1.2 and 1.3")
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let opts = RelayOptions::new().tls_config(Arc::new(config));
    /// # let _ = opts;
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(TlsConfig(config));
        self
    }

    /// The NIP-42 policy.
    pub fn auth_policy(&self) -> AuthPolicy {
        self.auth
    }

    /// Whether subscriptions and fetches use this relay.
    pub fn is_read(&self) -> bool {
        self.read
    }

    /// Whether publishes go to this relay.
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// The reconnect delays.
    pub fn backoff_delays(&self) -> &[Duration] {
        &self.backoff
    }

    /// The largest message accepted.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_size
    }
}
