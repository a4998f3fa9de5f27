//! What the test's handle and the relay's sessions share: options, fault switches, the stores,
//! the live sessions with their subscriptions, and the log of received frames.
//!
//! The relay runs on its own threads; the handle lives on the test's. Everything crosses
//! through one `Arc<Shared>`: a mutex around [`State`], atomics for the switches a session
//! reads on every frame, and a `watch` channel bumped after every change, which the
//! awaitable helpers of [`super::TestRelay`] wait on from any runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::watch;

use super::inspect::{ConnectionId, ReceivedFrame};
use super::session::{Deliver, Session};
use super::store::{Insert, Store, StoredEvent};
use crate::protocol::{Event, Filter, Kind, PublicKey, SubscriptionId};

/// Decides whether the relay accepts a valid event: `Err(message)` refuses it with
/// `["OK", id, false, message]`.
pub(crate) type EventPolicy = Arc<dyn Fn(&Event) -> Result<(), String> + Send + Sync>;

/// The options fixed when the relay starts.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) auth_required: bool,
    pub(crate) shared_store: bool,
    pub(crate) max_message_size: usize,
    pub(crate) max_subscriptions: usize,
    pub(crate) max_filters: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) record_frames: bool,
}

/// Whether new WebSocket upgrades are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusing {
    No,
    Yes,
    Until(Instant),
}

/// One live connection.
pub(crate) struct SessionEntry {
    pub(crate) path: String,
    pub(crate) addr: Addr<Session>,
    pub(crate) subscriptions: BTreeMap<SubscriptionId, Vec<Filter>>,
    pub(crate) authenticated: Option<PublicKey>,
}

/// Everything behind the lock.
#[derive(Default)]
pub(crate) struct State {
    /// Per store scope: the request path, or [`SHARED_SCOPE`].
    pub(crate) stores: HashMap<String, Store>,
    pub(crate) sessions: BTreeMap<ConnectionId, SessionEntry>,
    /// Connections ever opened, per path.
    pub(crate) opened: HashMap<String, usize>,
    pub(crate) refused: usize,
    /// Close frames received from clients, on every path.
    pub(crate) closes_received: usize,
    pub(crate) refusing: Option<Refusing>,
    pub(crate) received: Vec<ReceivedFrame>,
    pub(crate) policy: Option<EventPolicy>,
}

/// The store scope of every path when the store is shared.
const SHARED_SCOPE: &str = "*";

/// Frames to send: to the session that caused them (written inline), and to others.
pub(crate) struct Deliveries {
    pub(crate) own: Vec<String>,
    pub(crate) others: Vec<(Addr<Session>, Vec<String>)>,
}

impl Deliveries {
    /// Sends the frames for other sessions through their mailboxes.
    pub(crate) fn send_others(self) -> Vec<String> {
        for (addr, frames) in self.others {
            addr.do_send(Deliver(frames));
        }
        self.own
    }
}

/// `["EVENT", <sub>, <event json>]` without re-serializing the event.
pub(crate) fn event_frame(subscription_id: &SubscriptionId, event_json: &str) -> String {
    // Serializing a string cannot fail.
    let sub = serde_json::to_string(subscription_id.as_str()).unwrap_or_default();
    let mut frame = String::with_capacity(event_json.len() + sub.len() + 12);
    frame.push_str("[\"EVENT\",");
    frame.push_str(&sub);
    frame.push(',');
    frame.push_str(event_json);
    frame.push(']');
    frame
}

/// Shared between the handle and the server threads.
pub(crate) struct Shared {
    pub(crate) options: Options,
    port: AtomicU16,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    silent: AtomicBool,
    never_eose: AtomicBool,
    never_ok: AtomicBool,
    delay_nanos: AtomicU64,
    next_connection: AtomicU64,
    /// Sessions whose reads are paused by silence, woken when it ends.
    read_wakers: Mutex<HashMap<ConnectionId, Waker>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the relay down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        options: Options,
        delay: Duration,
        never_eose: bool,
        never_ok: bool,
        policy: Option<EventPolicy>,
    ) -> Self {
        let state = State {
            policy,
            ..State::default()
        };
        Shared {
            options,
            port: AtomicU16::new(0),
            state: Mutex::new(state),
            changed: watch::Sender::new(0),
            silent: AtomicBool::new(false),
            never_eose: AtomicBool::new(never_eose),
            never_ok: AtomicBool::new(never_ok),
            delay_nanos: AtomicU64::new(duration_nanos(delay)),
            next_connection: AtomicU64::new(1),
            read_wakers: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.state))
    }

    /// Changes the state and wakes every waiter.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let out = f(&mut lock(&self.state));
        self.notify();
        out
    }

    /// Wakes every waiter (something they may be waiting for changed).
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that sees every change from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn port(&self) -> u16 {
        self.port.load(Ordering::Acquire)
    }

    pub(crate) fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Release);
    }

    /// `ws://127.0.0.1:PORT/path`, the URL this path's relay answers to (and checks NIP-42
    /// `relay` tags against).
    pub(crate) fn url_for(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("ws://127.0.0.1:{}{slash}{path}", self.port())
    }

    /// Which store a path uses.
    pub(crate) fn scope(&self, path: &str) -> String {
        if self.options.shared_store {
            SHARED_SCOPE.to_owned()
        } else {
            normalise_path(path)
        }
    }

    pub(crate) fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Acquire)
    }

    pub(crate) fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Release);
        if !silent {
            let wakers: Vec<Waker> = lock(&self.read_wakers).drain().map(|(_, w)| w).collect();
            for waker in wakers {
                waker.wake();
            }
        }
        self.notify();
    }

    /// Remembers who to wake when silence ends.
    pub(crate) fn park_reader(&self, id: ConnectionId, waker: &Waker) {
        lock(&self.read_wakers).insert(id, waker.clone());
        // Silence may have ended between the caller's check and now.
        if !self.is_silent() {
            if let Some(w) = lock(&self.read_wakers).remove(&id) {
                w.wake();
            }
        }
    }

    pub(crate) fn never_eose(&self) -> bool {
        self.never_eose.load(Ordering::Acquire)
    }

    pub(crate) fn set_never_eose(&self, on: bool) {
        self.never_eose.store(on, Ordering::Release);
    }

    pub(crate) fn never_ok(&self) -> bool {
        self.never_ok.load(Ordering::Acquire)
    }

    pub(crate) fn set_never_ok(&self, on: bool) {
        self.never_ok.store(on, Ordering::Release);
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::Acquire))
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        self.delay_nanos
            .store(duration_nanos(delay), Ordering::Release);
    }

    pub(crate) fn policy(&self) -> Option<EventPolicy> {
        self.read(|st| st.policy.clone())
    }

    /// Whether an upgrade arriving now is refused; counts it if so.
    pub(crate) fn refuse_now(&self) -> bool {
        self.update(|st| {
            let refuse = match st.refusing {
                None | Some(Refusing::No) => false,
                Some(Refusing::Yes) => true,
                Some(Refusing::Until(t)) => Instant::now() < t,
            };
            if refuse {
                st.refused += 1;
            }
            refuse
        })
    }

    /// Records a new connection.
    pub(crate) fn register(&self, id: ConnectionId, path: &str, addr: Addr<Session>) {
        self.update(|st| {
            *st.opened.entry(normalise_path(path)).or_default() += 1;
            st.sessions.insert(
                id,
                SessionEntry {
                    path: normalise_path(path),
                    addr,
                    subscriptions: BTreeMap::new(),
                    authenticated: None,
                },
            );
        });
    }

    /// Forgets a connection (idempotent: called when the session stops and when it drops).
    pub(crate) fn unregister(&self, id: ConnectionId) {
        lock(&self.read_wakers).remove(&id);
        let removed = lock(&self.state).sessions.remove(&id).is_some();
        if removed {
            self.notify();
        }
    }

    /// Records a frame a client sent, if the relay keeps a log.
    pub(crate) fn record(&self, frame: ReceivedFrame) {
        if self.options.record_frames {
            self.update(|st| st.received.push(frame));
        } else {
            self.notify();
        }
    }

    /// Stores `event` in the store of `scope` and works out who receives it live, all under
    /// one lock, so that a concurrent REQ sees it either in its stored answer or live, never
    /// both and never neither. `from` is the session that published it, if any.
    pub(crate) fn store_and_route(
        &self,
        scope: &str,
        event: Event,
        from: Option<ConnectionId>,
    ) -> (Insert, Deliveries) {
        self.update(|st| {
            let (outcome, stored) = st.stores.entry(scope.to_owned()).or_default().insert(event);
            let mut deliveries = Deliveries {
                own: Vec::new(),
                others: Vec::new(),
            };
            match stored {
                // NIP-42: AUTH events are never broadcast.
                Some(stored) if outcome.is_new() && stored.event.kind != Kind::AUTH => {
                    route(self, st, scope, &stored, from, &mut deliveries);
                }
                _ => {}
            }
            (outcome, deliveries)
        })
    }
}

fn route(
    shared: &Shared,
    st: &State,
    scope: &str,
    stored: &StoredEvent,
    from: Option<ConnectionId>,
    out: &mut Deliveries,
) {
    for (id, session) in &st.sessions {
        if shared.scope(&session.path) != scope {
            continue;
        }
        let frames: Vec<String> = session
            .subscriptions
            .iter()
            .filter(|(_, filters)| filters.iter().any(|f| f.matches(&stored.event)))
            .map(|(sub, _)| event_frame(sub, &stored.json))
            .collect();
        if frames.is_empty() {
            continue;
        }
        if Some(*id) == from {
            out.own = frames;
        } else {
            out.others.push((session.addr.clone(), frames));
        }
    }
}

/// The key a path is counted and stored under: the request path, `/` for the root.
pub(crate) fn normalise_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
