//! The fault matrix's harness: three independent `TestRelay`s, one pool with a live
//! subscription on all of them plus one per relay, a user actor on its own thread that can
//! be paused, a publisher writing a known sequence of signed events, and the checks run
//! after every fault family.
//!
//! # What is checked
//!
//! * `"all"` (every relay) delivers each event of the sequence exactly once: the pool's
//!   de-duplication holds across reconnects and relays.
//! * `"r<i>"` (relay `i` only) delivers each event relay `i` still stores exactly once:
//!   every relay's own resubscription is gap-free, not only the pool as a whole.
//! * In order per relay: after a relay's EOSE (live events, sent in publish order), what
//!   the user receives from that relay on that socket has increasing sequence numbers.
//! * No subscription lost: each relay ends with one connection holding exactly `"all"`
//!   and its `"r<i>"`, and no `CLOSED`, forged or unrequested event was reported.
//! * Reconnects follow the backoff list: every `Disconnected`/`ConnectFailed` announces a
//!   delay that is an entry of the list (within the jitter), walked in order within an
//!   outage; and the connection attempts (`Stats.connect_attempts`) are exactly one plus
//!   the retries announced, never more than the time spent allows, and no fewer than the
//!   relay saw (`connections_total + refused_total`).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_nostr::pool::{PoolStats, RelayPool, Relays, Stats, Subscribe};
use actix_nostr::protocol::{Event, EventBuilder, EventId, Filter, Keys, Kind, Timestamp};
use actix_nostr::relay::{MessageKind, RelayError, RelayMessage, RelayOptions};
use actix_nostr::testing::{TestRelay, TestRelayBuilder};
use tokio::sync::mpsc;

/// The bound on every wait. Generous: CI machines are shared and slow.
pub const WAIT: Duration = Duration::from_secs(20);

/// The reconnect delays of every fault test: short, and far enough apart that each
/// announced delay maps to exactly one entry even with the jitter.
pub const BACKOFF: [Duration; 4] = [
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
];
/// Small jitter: ±10 %.
pub const JITTER: f64 = 0.1;
/// Relays in the matrix.
pub const RELAYS: usize = 3;
/// The subscription on every relay.
pub const ALL: &str = "all";

/// The seed of a test's fault schedule: `FAULT_SEED` if set, otherwise a fresh one. It is
/// printed, so a failure can be replayed with `FAULT_SEED=<seed> cargo test …`.
pub fn fault_seed(test: &str) -> u64 {
    let seed = match std::env::var("FAULT_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("FAULT_SEED={s:?} is not a u64")),
        Err(_) => rand::random(),
    };
    println!("{test}: fault seed {seed} (rerun with FAULT_SEED={seed})");
    seed
}

/// Options of every fault test: the backoff above, quick pings, a short stability
/// threshold and a resubscription overlap of two events (so the overlap is exercised).
pub fn fault_options() -> RelayOptions {
    RelayOptions::new()
        .backoff(BACKOFF.to_vec())
        .jitter(JITTER)
        .stable_after(Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(200))
        .resubscribe_overlap(Duration::from_secs(2))
}

/// The per-relay subscription id of relay `i`.
pub fn own_sub(i: usize) -> String {
    format!("r{i}")
}

/// When the user actor stops to think: after its `after`-th event it blocks its thread for
/// `pause` (a stuck or slow consumer).
#[derive(Debug, Clone, Copy)]
pub struct PausePlan {
    pub after: u64,
    pub pause: Duration,
}

/// `PAUSE_*`: where the user actor is with its pause.
pub const PAUSE_NONE: u8 = 0;
pub const PAUSE_ACTIVE: u8 = 1;
pub const PAUSE_DONE: u8 = 2;

/// The user's actor: records every message for the test and counts the events it handled.
struct User {
    tx: mpsc::UnboundedSender<RelayMessage>,
    consumed: Arc<AtomicU64>,
    plan: Option<PausePlan>,
    pause_state: Arc<AtomicU8>,
}

impl Actor for User {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for User {
    type Result = ();
    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        if let MessageKind::Event { .. } = msg.kind {
            let n = self.consumed.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(plan) = self.plan {
                if n == plan.after {
                    self.pause_state.store(PAUSE_ACTIVE, Ordering::SeqCst);
                    // The fault itself: this actor's thread is busy elsewhere.
                    std::thread::sleep(plan.pause);
                    self.pause_state.store(PAUSE_DONE, Ordering::SeqCst);
                }
            }
        }
        let _ = self.tx.send(msg);
    }
}

/// Three relays, a pool, a user actor and the published sequence.
pub struct Harness {
    pub relays: Vec<TestRelay>,
    pub urls: Vec<String>,
    pub pool: Addr<RelayPool>,
    pub options: RelayOptions,
    pub seed: u64,
    rx: mpsc::UnboundedReceiver<RelayMessage>,
    /// Every message the user actor handled, in order.
    pub log: Vec<RelayMessage>,
    /// Events the user actor handled.
    pub consumed: Arc<AtomicU64>,
    pub pause_state: Arc<AtomicU8>,
    user_arbiter: Arbiter,
    keys: Keys,
    base: u64,
    /// The published sequence: event `n` has content `seq n` and `created_at` base + n.
    pub sequence: Vec<Event>,
    seq_of: HashMap<EventId, usize>,
    /// Per relay, the sequence numbers its store lost (restarted with its store wiped).
    pub lost: Vec<BTreeSet<usize>>,
    started: Instant,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.user_arbiter.stop();
    }
}

impl Harness {
    /// Starts three relays and a pool with `options`, subscribes, and waits until every
    /// relay holds both subscriptions and has sent EOSE for them.
    pub async fn start(
        seed: u64,
        options: RelayOptions,
        relay: impl Fn() -> TestRelayBuilder,
        pause: Option<PausePlan>,
    ) -> Harness {
        // RUST_LOG=debug shows both sides (the pool and the relays) of a failing run.
        let _ = env_logger::builder().is_test(true).try_init();
        let mut relays = Vec::new();
        for _ in 0..RELAYS {
            relays.push(relay().start().await.expect("relay starts"));
        }
        let urls: Vec<String> = relays.iter().map(TestRelay::url).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let consumed = Arc::new(AtomicU64::new(0));
        let pause_state = Arc::new(AtomicU8::new(PAUSE_NONE));
        let user_arbiter = Arbiter::new();
        let user = {
            let (consumed, pause_state) = (consumed.clone(), pause_state.clone());
            User::start_in_arbiter(&user_arbiter.handle(), move |_| User {
                tx,
                consumed,
                plan: pause,
                pause_state,
            })
        };
        let mut builder = RelayPool::builder()
            .recipient(user.recipient())
            .default_options(options.clone());
        for url in &urls {
            builder = builder.relay(url);
        }
        let pool = builder.start().expect("pool starts");
        let keys = Keys::generate();
        let mut h = Harness {
            relays,
            urls,
            pool,
            options,
            seed,
            rx,
            log: Vec::new(),
            consumed,
            pause_state,
            user_arbiter,
            keys,
            base: Timestamp::now().as_secs() - 100_000,
            sequence: Vec::new(),
            seq_of: HashMap::new(),
            lost: vec![BTreeSet::new(); RELAYS],
            started: Instant::now(),
        };
        h.subscribe().await;
        h
    }

    fn filter(&self) -> Filter {
        Filter::new()
            .kind(Kind::TEXT_NOTE)
            .author(self.keys.public_key())
    }

    async fn subscribe(&mut self) {
        let filter = self.filter();
        self.pool
            .send(Subscribe::new(vec![filter.clone()]).id(ALL))
            .await
            .expect("pool alive")
            .expect("subscribed");
        for (i, url) in self.urls.iter().enumerate() {
            let only = Relays::only([url]).expect("relay url");
            self.pool
                .send(
                    Subscribe::new(vec![filter.clone()])
                        .id(own_sub(i))
                        .relays(only),
                )
                .await
                .expect("pool alive")
                .expect("subscribed");
        }
        for i in 0..RELAYS {
            for sub in [ALL.to_owned(), own_sub(i)] {
                let url = self.urls[i].clone();
                self.wait_for(&format!("EOSE {sub} from relay {i}"), |h| {
                    h.log.iter().any(|m| {
                        m.relay.as_str() == url
                            && matches!(&m.kind, MessageKind::Eose(id) if id.as_str() == sub)
                    })
                })
                .await;
            }
        }
        self.wait_relays_settled().await;
    }

    // ---- publishing ------------------------------------------------------------------------

    /// Signs the next event of the sequence without publishing it.
    pub fn next_event(&mut self) -> (usize, Event) {
        let n = self.sequence.len();
        let event = EventBuilder::text_note(format!("seq {n}"))
            .created_at(Timestamp::from_secs(self.base + n as u64))
            .sign(&self.keys);
        self.seq_of.insert(event.id, n);
        self.sequence.push(event.clone());
        (n, event)
    }

    /// Publishes the next event of the sequence straight into every relay's store (live
    /// subscribers get it at once), whatever the relay's state.
    pub fn publish(&mut self) -> usize {
        let (n, event) = self.next_event();
        for relay in &self.relays {
            assert!(relay.publish(event.clone()), "event {n} is new");
        }
        n
    }

    /// Publishes `count` events.
    pub fn publish_many(&mut self, count: usize) {
        for _ in 0..count {
            self.publish();
        }
    }

    /// The relay `i` was restarted with its store wiped (call it once the pool has seen
    /// the relay's old socket end): what it had not sent on its own subscription yet, it
    /// never will.
    pub fn store_wiped(&mut self, i: usize) {
        self.pump();
        let sent = self.delivered(&own_sub(i));
        let lost: Vec<usize> = (0..self.sequence.len())
            .filter(|n| !sent.contains_key(n))
            .collect();
        self.lost[i].extend(lost);
    }

    /// How many `Disconnected` relay `i` reported so far.
    pub fn disconnects(&self, i: usize) -> usize {
        self.messages_of(i)
            .filter(|m| matches!(m.kind, MessageKind::Disconnected { .. }))
            .count()
    }

    // ---- receiving -------------------------------------------------------------------------

    /// Takes what the user actor has handled so far, without waiting.
    pub fn pump(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.log.push(m);
        }
    }

    /// Waits (bounded by [`WAIT`]) until `cond` holds over the harness.
    pub async fn wait_for(&mut self, what: &str, cond: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.pump();
            if cond(self) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "seed {}: timed out after {WAIT:?} waiting for {what}; {}",
                self.seed,
                self.summary()
            );
            if let Ok(Some(m)) = actix::clock::timeout(left, self.rx.recv()).await {
                self.log.push(m);
            }
        }
    }

    /// The sequence number of a delivered event, if it is one of ours.
    pub fn seq(&self, event: &Event) -> Option<usize> {
        self.seq_of.get(&event.id).copied()
    }

    /// For subscription `sub`: each delivered sequence number with the relays it came from.
    pub fn delivered(&self, sub: &str) -> BTreeMap<usize, Vec<String>> {
        let mut out: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for m in &self.log {
            if let MessageKind::Event {
                subscription_id,
                event,
            } = &m.kind
            {
                if subscription_id.as_str() == sub {
                    let n = self.seq(event).unwrap_or(usize::MAX);
                    out.entry(n).or_default().push(m.relay.as_str().to_owned());
                }
            }
        }
        out
    }

    /// What subscription `sub` should end with: every sequence number, less what the relay
    /// behind it lost (for a per-relay subscription).
    pub fn expected(&self, sub: &str) -> BTreeSet<usize> {
        let all = 0..self.sequence.len();
        match (0..RELAYS).find(|i| own_sub(*i) == sub) {
            Some(i) => all.filter(|n| !self.lost[i].contains(n)).collect(),
            None => all.collect(),
        }
    }

    fn complete(&self) -> bool {
        let subs = std::iter::once(ALL.to_owned()).chain((0..RELAYS).map(own_sub));
        subs.into_iter().all(|sub| {
            let got: BTreeSet<usize> = self.delivered(&sub).keys().copied().collect();
            self.expected(&sub).is_subset(&got)
        })
    }

    fn summary(&self) -> String {
        let mut out = format!("{} events published; ", self.sequence.len());
        for sub in std::iter::once(ALL.to_owned()).chain((0..RELAYS).map(own_sub)) {
            let got: BTreeSet<usize> = self.delivered(&sub).keys().copied().collect();
            let missing: Vec<usize> = self.expected(&sub).difference(&got).copied().collect();
            out.push_str(&format!(
                "{sub}: {} delivered, missing {:?}; ",
                got.len(),
                &missing[..missing.len().min(20)]
            ));
        }
        for (i, r) in self.relays.iter().enumerate() {
            let subs: Vec<String> = r
                .open_subscriptions()
                .iter()
                .map(|s| format!("{}@{}", s.subscription_id, s.connection))
                .collect();
            out.push_str(&format!(
                "relay {i}: {} connections, subs {subs:?}; ",
                r.connections_now()
            ));
        }
        let tail: Vec<String> = self
            .log
            .iter()
            .rev()
            .filter(|m| !matches!(m.kind, MessageKind::Event { .. }))
            .take(12)
            .map(|m| format!("{} {:?}", m.relay, m.kind))
            .collect();
        out.push_str(&format!("last non-event messages: {tail:#?}"));
        out
    }

    /// Waits until every relay has exactly one connection holding exactly the pool's
    /// subscriptions for it (`"all"` and its own).
    pub async fn wait_relays_settled(&self) {
        for (i, relay) in self.relays.iter().enumerate() {
            let want: BTreeSet<String> = [ALL.to_owned(), own_sub(i)].into();
            let settled = relay
                .wait_until(
                    |r| {
                        let subs = r.open_subscriptions();
                        let ids: BTreeSet<String> =
                            subs.iter().map(|s| s.subscription_id.to_string()).collect();
                        r.connections_now() == 1 && subs.len() == want.len() && ids == want
                    },
                    WAIT,
                )
                .await;
            assert!(
                settled.is_ok(),
                "seed {}: relay {i} did not end with one connection holding {want:?}: {}",
                self.seed,
                self.summary()
            );
        }
    }

    /// After the faults: waits for every event on every subscription and for the relays to
    /// settle, then runs every check. Returns the pool's counters.
    pub async fn settle_and_check(&mut self) -> PoolStats {
        self.wait_for("every event on every subscription", Harness::complete)
            .await;
        self.wait_relays_settled().await;
        // Anything still in flight (duplicates, late EOSEs) lands before the checks.
        let stats = self.pool.send(Stats).await.expect("pool alive");
        self.pump();
        self.check_exactly_once();
        self.check_order_per_relay();
        self.check_nothing_forged_or_closed(&stats);
        self.check_backoff(&stats);
        stats
    }

    // ---- checks ----------------------------------------------------------------------------

    fn check_exactly_once(&self) {
        for sub in std::iter::once(ALL.to_owned()).chain((0..RELAYS).map(own_sub)) {
            let delivered = self.delivered(&sub);
            assert!(
                !delivered.contains_key(&usize::MAX),
                "seed {}: {sub} delivered an event that is not in the sequence",
                self.seed
            );
            let twice: Vec<_> = delivered.iter().filter(|(_, r)| r.len() > 1).collect();
            assert!(
                twice.is_empty(),
                "seed {}: {sub} delivered events more than once: {twice:?}",
                self.seed
            );
            let got: BTreeSet<usize> = delivered.keys().copied().collect();
            assert_eq!(
                got,
                self.expected(&sub),
                "seed {}: {sub} did not deliver exactly the expected events",
                self.seed
            );
            if let Some(i) = (0..RELAYS).find(|i| own_sub(*i) == sub) {
                assert!(
                    delivered.values().flatten().all(|r| *r == self.urls[i]),
                    "seed {}: {sub} delivered events from another relay",
                    self.seed
                );
            }
        }
    }

    /// Live events (after the socket's EOSE for that subscription) come in publish order.
    fn check_order_per_relay(&self) {
        for (i, url) in self.urls.iter().enumerate() {
            let mut live: HashMap<String, Option<usize>> = HashMap::new();
            for m in self.log.iter().filter(|m| m.relay.as_str() == url) {
                match &m.kind {
                    MessageKind::Connected | MessageKind::Disconnected { .. } => live.clear(),
                    MessageKind::Eose(sub) => {
                        live.insert(sub.to_string(), None);
                    }
                    MessageKind::Event {
                        subscription_id,
                        event,
                    } => {
                        let Some(last) = live.get_mut(subscription_id.as_str()) else {
                            continue;
                        };
                        let n = self.seq(event).unwrap_or(usize::MAX);
                        assert!(
                            last.is_none_or(|l| l < n),
                            "seed {}: relay {i} {subscription_id}: live event {n} after {last:?}",
                            self.seed
                        );
                        *last = Some(n);
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_nothing_forged_or_closed(&self, stats: &PoolStats) {
        for m in &self.log {
            let bad = match &m.kind {
                MessageKind::Closed { .. } => true,
                MessageKind::Error(e) => !matches!(e, RelayError::ConnectFailed { .. }),
                _ => false,
            };
            assert!(
                !bad,
                "seed {}: unexpected {} {:?}",
                self.seed, m.relay, m.kind
            );
        }
        assert_eq!(stats.total.events_invalid, 0, "{:?}", stats.total);
    }

    /// Index of the backoff entry `d` was drawn from (with jitter), if any.
    fn backoff_index(d: Duration) -> Option<usize> {
        let slack = Duration::from_micros(50);
        BACKOFF.iter().position(|b| {
            d + slack >= b.mul_f64(1.0 - JITTER) && d <= b.mul_f64(1.0 + JITTER) + slack
        })
    }

    fn check_backoff(&self, stats: &PoolStats) {
        let last = BACKOFF.len() - 1;
        let elapsed = self.started.elapsed();
        let min_delay = BACKOFF[0].mul_f64(1.0 - JITTER);
        for (i, url) in self.urls.iter().enumerate() {
            let mut scheduled = 0u64;
            let mut previous: Option<usize> = None;
            let mut current: Option<usize> = None;
            for m in self.log.iter().filter(|m| m.relay.as_str() == url) {
                let (delay, first) = match &m.kind {
                    MessageKind::Connected => {
                        if let Some(k) = current.take() {
                            previous = Some(k);
                        }
                        continue;
                    }
                    MessageKind::Disconnected {
                        next_retry: Some(d),
                        ..
                    } => (*d, true),
                    MessageKind::Error(RelayError::ConnectFailed { next_retry, .. }) => {
                        (*next_retry, false)
                    }
                    _ => continue,
                };
                scheduled += 1;
                let k = Self::backoff_index(delay).unwrap_or_else(|| {
                    panic!(
                        "seed {}: relay {i}: delay {delay:?} is not on the backoff list {BACKOFF:?}",
                        self.seed
                    )
                });
                let allowed = if first {
                    // A new outage starts the list over after a stable connection, or goes
                    // on climbing it.
                    let climbing = previous.map_or(0, |p| (p + 1).min(last));
                    k == 0 || k == climbing
                } else {
                    // Within an outage: the next entry, the last one repeating.
                    current.is_some_and(|c| k == (c + 1).min(last))
                };
                assert!(
                    allowed,
                    "seed {}: relay {i}: delay {delay:?} (entry {k}) out of order after \
                     {current:?} (previous outage ended at {previous:?})",
                    self.seed
                );
                current = Some(k);
            }
            let relay = &stats.relays.iter().find(|(u, _)| u.as_str() == url);
            let attempts = relay.map(|(_, s)| s.connect_attempts).unwrap_or(0);
            // Every attempt after the first was announced with its delay: none came from
            // anywhere else (a tight loop, a leaked timer).
            assert_eq!(
                attempts,
                1 + scheduled,
                "seed {}: relay {i}: {attempts} connection attempts for {scheduled} announced \
                 retries",
                self.seed
            );
            let budget = 1 + (elapsed.as_secs_f64() / min_delay.as_secs_f64()) as u64;
            assert!(
                attempts <= budget,
                "seed {}: relay {i}: {attempts} attempts in {elapsed:?}: a reconnect storm",
                self.seed
            );
            let seen = (self.relays[i].connections_total() + self.relays[i].refused_total()) as u64;
            assert!(
                seen <= attempts,
                "seed {}: relay {i} saw {seen} connection attempts, the pool counted {attempts}",
                self.seed
            );
        }
    }

    /// Messages of relay `i`, in order.
    pub fn messages_of(&self, i: usize) -> impl Iterator<Item = &RelayMessage> {
        let url = self.urls[i].clone();
        self.log.iter().filter(move |m| m.relay.as_str() == url)
    }

    /// How many connection attempts the pool made to relay `i`.
    pub fn attempts(stats: &PoolStats, url: &str) -> u64 {
        stats
            .relays
            .iter()
            .find(|(u, _)| u.as_str() == url)
            .map_or(0, |(_, s)| s.connect_attempts)
    }

    /// Announced retries of relay `i` so far.
    pub fn announced_retries(&self, i: usize) -> usize {
        self.messages_of(i)
            .filter(|m| {
                matches!(
                    m.kind,
                    MessageKind::Disconnected {
                        next_retry: Some(_),
                        ..
                    } | MessageKind::Error(RelayError::ConnectFailed { .. })
                )
            })
            .count()
    }
}

/// One fault-matrix test at a time: each drives three relays through restarts and
/// silences on tight schedules, and running six at once on a 2-core CI machine starves
/// them (timeouts measured the machine, not the pool).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
