//! The `RelayPool` actor and its builder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::error::PoolError;
use super::requests::PoolSub;
use crate::protocol::{Keys, SubscriptionId};
use crate::relay::{
    CloseConnection, ConnectionParts, Dedup, DedupStats, Delivery, DisconnectReason, Forwarder,
    MessageKind, OpenSub, Outlet, RelayConnection, RelayError, RelayMessage, RelayOptions,
    RelayShared, RelayUrl, SetRecipients, SubTarget, DEFAULT_DEDUP_CAPACITY,
};

/// How often the pool checks that every connection actor is still alive. A connection that
/// panicked is replaced within this time.
const WATCHDOG_INTERVAL: Duration = Duration::from_millis(500);

/// The supervisor of all relay connections: one [`RelayConnection`] actor per relay URL,
/// each started under `actix::Supervisor`.
///
/// Build it with [`RelayPool::builder`], then send it messages ([`AddRelay`](super::AddRelay),
/// [`SendTo`](super::SendTo), …). What the relays say reaches the recipients given to the
/// builder as [`RelayMessage`]s.
///
/// ```no_run
/// use actix::prelude::*;
/// use actix_nostr::pool::{AddRelay, RelayPool};
/// use actix_nostr::relay::{MessageKind, RelayMessage};
///
/// struct Printer;
/// impl Actor for Printer {
///     type Context = Context<Self>;
/// }
/// impl Handler<RelayMessage> for Printer {
///     type Result = ();
///     fn handle(&mut self, msg: RelayMessage, _: &mut Context<Self>) {
///         if let MessageKind::Notice(text) = msg.kind {
///             println!("{}: {text}", msg.relay);
///         }
///     }
/// }
///
/// #[actix::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let printer = Printer.start();
///     let pool = RelayPool::builder()
///         .recipient(printer.recipient())
///         .relay("wss://relay.example.com")
///         .start()?;
///     pool.send(AddRelay::new("wss://other.example.com")).await??;
///     Ok(())
/// }
/// ```
///
/// # Supervision
///
/// A connection that stops is restarted in place by its supervisor (its `Addr` stays valid).
/// A connection that panics takes its supervisor down with it; the pool notices the dead
/// mailbox within half a second, starts a replacement with the same options and counters,
/// and tells the recipients with an [`RelayError::ActorRestarted`] error.
pub struct RelayPool {
    pub(crate) relays: BTreeMap<RelayUrl, RelayHandle>,
    pub(crate) recipients: Vec<Recipient<RelayMessage>>,
    pub(crate) default_options: RelayOptions,
    pub(crate) keys: Option<Keys>,
    pub(crate) dedup: Dedup,
    pub(crate) subs: BTreeMap<SubscriptionId, PoolSub>,
    /// Dedicated threads for connections.
    arbiters: Vec<Arbiter>,
    /// Whether the pool's own arbiter takes a turn too (the first).
    own_turn: bool,
    next_arbiter: usize,
    /// Reached by the connections on dedicated arbiters, in batches; it hands their messages
    /// to the recipients here. Connections on the pool's own arbiter deliver directly.
    forwarder: Option<Addr<Forwarder>>,
    pub(crate) shutting_down: bool,
}

/// What the pool keeps per relay.
pub(crate) struct RelayHandle {
    pub(crate) url: RelayUrl,
    pub(crate) options: RelayOptions,
    pub(crate) addr: Addr<RelayConnection>,
    pub(crate) shared: Arc<RelayShared>,
    /// Runs on the pool's own arbiter and delivers to the recipients itself (so it needs
    /// to hear of new recipients).
    pub(crate) local: bool,
}

impl RelayPool {
    /// Starts building a pool.
    pub fn builder() -> RelayPoolBuilder {
        RelayPoolBuilder::default()
    }

    /// Starts a connection actor under a supervisor, on the next arbiter in turn (the pool's
    /// own one included when it takes turns). Says whether it runs here, delivering directly.
    pub(crate) fn spawn_connection(
        &mut self,
        url: RelayUrl,
        options: RelayOptions,
        shared: Arc<RelayShared>,
    ) -> (Addr<RelayConnection>, bool) {
        let turn = dedicated_turn(self.next_arbiter, self.arbiters.len(), self.own_turn);
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        let dedicated = match (&self.forwarder, turn) {
            (Some(forwarder), Some(i)) => self
                .arbiters
                .get(i)
                .map(|a| (a.handle(), forwarder.clone().recipient())),
            _ => None,
        };
        let parts = |outlet| ConnectionParts {
            url,
            options,
            outlet,
            shared,
            dedup: self.dedup.clone(),
            keys: self.keys.clone(),
        };
        match dedicated {
            Some((arbiter, forwarder)) => {
                let parts = parts(Outlet::Batched(forwarder));
                let addr =
                    Supervisor::start_in_arbiter(&arbiter, move |_| RelayConnection::new(parts));
                (addr, false)
            }
            None => {
                let parts = parts(Outlet::Direct(self.recipients.clone()));
                (
                    Supervisor::start(move |_| RelayConnection::new(parts)),
                    true,
                )
            }
        }
    }

    pub(crate) fn add_relay(&mut self, url: RelayUrl, options: RelayOptions) -> bool {
        if self.relays.contains_key(&url) {
            return false;
        }
        let shared = RelayShared::new();
        let (addr, local) = self.spawn_connection(url.clone(), options.clone(), shared.clone());
        let handle = RelayHandle {
            url: url.clone(),
            options,
            addr,
            shared,
            local,
        };
        self.open_subs_on(&handle);
        self.relays.insert(url, handle);
        true
    }

    /// Sends every pool subscription that covers this relay to its connection.
    fn open_subs_on(&self, handle: &RelayHandle) {
        if !handle.options.read {
            return;
        }
        for (id, sub) in &self.subs {
            if sub.relays.includes(&handle.url) {
                handle.addr.do_send(OpenSub {
                    id: id.clone(),
                    filters: sub.filters.clone(),
                    target: SubTarget::User,
                    close_on_eose: sub.close_on_eose,
                });
            }
        }
    }

    /// Hands the current recipients to whoever delivers: the forwarder, and each
    /// connection that delivers directly.
    pub(crate) fn recipients_changed(&mut self) {
        let list = &self.recipients;
        if let Some(f) = &self.forwarder {
            f.do_send(SetRecipients(list.clone()));
        }
        for h in self.relays.values().filter(|h| h.local) {
            h.addr.do_send(SetRecipients(list.clone()));
        }
    }

    /// The de-dup memory's counters.
    pub(crate) fn dedup_stats(&self) -> DedupStats {
        self.dedup.stats()
    }

    pub(crate) fn relay_handle(&self, url: &RelayUrl) -> Result<&RelayHandle, PoolError> {
        self.relays
            .get(url)
            .ok_or_else(|| PoolError::UnknownRelay(url.clone()))
    }

    fn notify(&self, message: RelayMessage) {
        for r in &self.recipients {
            r.do_send(message.clone());
        }
    }

    /// Replaces connection actors whose task died (a panic).
    fn watchdog(&mut self) {
        let dead: Vec<RelayUrl> = self
            .relays
            .values()
            .filter(|h| !h.addr.connected())
            .map(|h| h.url.clone())
            .collect();
        for url in dead {
            let Some(handle) = self.relays.get(&url) else {
                continue;
            };
            log::error!("{url}: connection actor died; starting a replacement");
            handle.shared.stats.record_error("connection actor died");
            let (options, shared) = (handle.options.clone(), handle.shared.clone());
            let (addr, local) = self.spawn_connection(url.clone(), options, shared);
            if let Some(handle) = self.relays.get_mut(&url) {
                handle.addr = addr;
                handle.local = local;
            }
            if let Some(handle) = self.relays.get(&url) {
                self.open_subs_on(handle);
            }
            self.notify(RelayMessage {
                relay: url,
                kind: MessageKind::Error(RelayError::ActorRestarted),
            });
        }
    }
}

/// Which dedicated arbiter the `turn`-th connection goes to, or `None` for the pool's own:
/// the pool's own first when it takes turns, then each dedicated one, round and round.
fn dedicated_turn(turn: usize, dedicated: usize, own_turn: bool) -> Option<usize> {
    if dedicated == 0 {
        return None;
    }
    let slots = dedicated + usize::from(own_turn);
    (turn % slots).checked_sub(usize::from(own_turn))
}

impl Actor for RelayPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(WATCHDOG_INTERVAL, |act, ctx| {
            // The interval would keep the pool alive forever; when the user has dropped
            // every address, shut down instead (close frames to every relay).
            if !ctx.connected() {
                ctx.stop();
                return;
            }
            act.watchdog();
        });
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        self.shutting_down = true;
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        log::debug!("relay pool stopped: closing {} relays", self.relays.len());
        let closes: Vec<_> = self
            .relays
            .values()
            .map(|h| h.addr.send(CloseConnection(DisconnectReason::Shutdown)))
            .collect();
        let arbiters = std::mem::take(&mut self.arbiters);
        // The connections' arbiters may stop only after the close frames left.
        actix::spawn(async move {
            let _ = actix::clock::timeout(
                Duration::from_secs(3),
                futures_util::future::join_all(closes),
            )
            .await;
            for arbiter in arbiters {
                arbiter.stop();
            }
        });
    }
}

/// Builds a [`RelayPool`].
///
/// ```
/// use actix_nostr::pool::RelayPool;
/// use actix_nostr::relay::RelayOptions;
/// # #[actix::main] async fn main() -> Result<(), actix_nostr::pool::PoolError> {
/// let pool = RelayPool::builder()
///     .default_options(RelayOptions::new().write(false))
///     .start()?;
/// # let _ = pool; Ok(()) }
/// ```
pub struct RelayPoolBuilder {
    recipients: Vec<Recipient<RelayMessage>>,
    default_options: RelayOptions,
    keys: Option<Keys>,
    relays: Vec<(String, Option<RelayOptions>)>,
    dedup_capacity: usize,
    delivery: Delivery,
    /// Dedicated connection threads.
    arbiters: usize,
    /// Whether the pool's own arbiter runs connections too, taking the first turn.
    own_turn: bool,
}

impl Default for RelayPoolBuilder {
    fn default() -> Self {
        RelayPoolBuilder {
            recipients: Vec::new(),
            default_options: RelayOptions::default(),
            keys: None,
            relays: Vec::new(),
            dedup_capacity: DEFAULT_DEDUP_CAPACITY,
            delivery: Delivery::default(),
            // One thread per core, the pool's own included.
            arbiters: std::thread::available_parallelism().map_or(0, |n| n.get() - 1),
            own_turn: true,
        }
    }
}

impl RelayPoolBuilder {
    /// Adds an actor that receives every [`RelayMessage`]. Several may be given; each gets
    /// every message. Defaults to none.
    pub fn recipient(mut self, recipient: Recipient<RelayMessage>) -> Self {
        self.recipients.push(recipient);
        self
    }

    /// Options for relays added without their own. Defaults to [`RelayOptions::default`].
    pub fn default_options(mut self, options: RelayOptions) -> Self {
        self.default_options = options;
        self
    }

    /// Keys used to answer NIP-42 AUTH challenges. Defaults to none: challenges are only
    /// reported to the recipients.
    pub fn keys(mut self, keys: Keys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// A relay to connect at start, with the default options.
    pub fn relay(mut self, url: impl Into<String>) -> Self {
        self.relays.push((url.into(), None));
        self
    }

    /// A relay to connect at start, with its own options.
    pub fn relay_with(mut self, url: impl Into<String>, options: RelayOptions) -> Self {
        self.relays.push((url.into(), Some(options)));
        self
    }

    /// How many event ids the de-dup memory keeps (verified once, delivered once).
    /// Defaults to 131,072.
    pub fn dedup_capacity(mut self, n: usize) -> Self {
        self.dedup_capacity = n.max(1);
        self
    }

    /// Whether an event from several relays reaches a subscription once, or once per relay.
    /// Defaults to [`Delivery::OncePerSubscription`].
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Runs the connections on `n` dedicated arbiter threads (in turn), so signature checks
    /// use several cores and none of them runs on the pool's own arbiter; their messages
    /// cross to the pool's arbiter in batches. 0 runs everything on the pool's own arbiter
    /// (one thread, no batching).
    ///
    /// Defaults to [`arbiters_with_own`](Self::arbiters_with_own)`(cores − 1)`: one thread
    /// per CPU, the pool's own included.
    pub fn arbiters(mut self, n: usize) -> Self {
        self.arbiters = n;
        self.own_turn = false;
        self
    }

    /// Runs the connections in turn on the pool's own arbiter (first) and on `n` dedicated
    /// arbiter threads. A connection on the pool's arbiter hands its messages straight to
    /// the recipients and answers requests made on that thread without crossing threads (a
    /// publish round trip to one relay costs two thread wake-ups fewer); the others cross in
    /// batches, as with
    /// [`arbiters`](Self::arbiters). Signature checks of the first relay then share the
    /// thread with the actors there, and an actor that blocks that thread stalls the relay
    /// too (its pings, its reads): keep such actors on an arbiter of their own, or use
    /// [`arbiters`](Self::arbiters) to keep every connection off the pool's thread. A pool
    /// started in `main` under `#[actix_web::main]` lives on the System's thread, where
    /// actix-web serves no requests (its workers have threads of their own).
    ///
    /// This is the default, with `n` = the number of CPUs − 1.
    pub fn arbiters_with_own(mut self, n: usize) -> Self {
        self.arbiters = n;
        self.own_turn = true;
        self
    }

    /// Starts the pool on the current arbiter and connects the initial relays. Fails,
    /// starting nothing, if an initial relay URL is invalid. Needs a running actix System.
    pub fn start(self) -> Result<Addr<RelayPool>, PoolError> {
        let mut initial = Vec::with_capacity(self.relays.len());
        for (url, options) in self.relays {
            initial.push((RelayUrl::parse(&url)?, options));
        }
        let forwarder =
            (self.arbiters > 0).then(|| Forwarder::new(self.recipients.clone()).start());
        let mut pool = RelayPool {
            relays: BTreeMap::new(),
            forwarder,
            recipients: self.recipients,
            default_options: self.default_options,
            keys: self.keys,
            dedup: Dedup::new(self.dedup_capacity, self.delivery),
            subs: BTreeMap::new(),
            arbiters: (0..self.arbiters).map(|_| Arbiter::new()).collect(),
            own_turn: self.own_turn,
            next_arbiter: 0,
            shutting_down: false,
        };
        Ok(RelayPool::create(move |_ctx| {
            for (url, options) in initial {
                let options = options.unwrap_or_else(|| pool.default_options.clone());
                pool.add_relay(url, options);
            }
            pool
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::dedicated_turn;

    fn turns(dedicated: usize, own_turn: bool) -> Vec<Option<usize>> {
        (0..5)
            .map(|t| dedicated_turn(t, dedicated, own_turn))
            .collect()
    }

    #[test]
    fn connections_take_turns_with_the_pool_s_own_arbiter_first() {
        // The default on two CPUs: the pool's own, then the one dedicated arbiter.
        assert_eq!(turns(1, true), [None, Some(0), None, Some(0), None]);
        assert_eq!(turns(3, true), [None, Some(0), Some(1), Some(2), None]);
        // `arbiters(n)`: dedicated ones only.
        assert_eq!(
            turns(2, false),
            [Some(0), Some(1), Some(0), Some(1), Some(0)]
        );
        // `arbiters(0)` (or one CPU): everything on the pool's own.
        assert_eq!(turns(0, false), [None; 5]);
        assert_eq!(turns(0, true), [None; 5]);
    }
}
