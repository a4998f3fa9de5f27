//! Inspection for assertions: the frames the relay received, its connections and open
//! subscriptions, its stored events, and waits bounded by a timeout so that tests never sleep
//! to synchronise.
//!
//! The waits work from any async runtime with a timer (an `#[actix::test]` body, a plain
//! `actix::System`, a tokio runtime): they watch a channel that the relay bumps after every
//! change, and never send actor messages to the relay's threads.

use std::fmt;
use std::time::Duration;

use super::relay::TestRelay;
use super::state::{normalise_path, State};
use crate::protocol::{self, ClientMessage, Event, Filter, PublicKey, SubscriptionId};

/// Identifies one client connection to the relay, unique for the relay's whole life
/// (restarts included), in the order connections were accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The number behind the id (1 for the first connection).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One frame a client sent to the relay, as the relay received it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceivedFrame {
    /// The connection it came on.
    pub connection: ConnectionId,
    /// The request path of that connection (`/` for the root).
    pub path: String,
    /// The frame's text (for a binary frame, its bytes decoded lossily as UTF-8).
    pub text: String,
    /// Whether it was a binary frame (NIP-01 only uses text frames).
    pub binary: bool,
    /// The text parsed as a client message.
    pub message: Result<ClientMessage, protocol::Error>,
}

impl ReceivedFrame {
    /// The message type (`"REQ"`, `"EVENT"`, …) when the frame parsed.
    pub fn verb(&self) -> Option<&'static str> {
        self.message.as_ref().ok().map(ClientMessage::verb)
    }

    /// The subscription id of a REQ, CLOSE or COUNT.
    pub fn subscription_id(&self) -> Option<&SubscriptionId> {
        match &self.message {
            Ok(ClientMessage::Req {
                subscription_id, ..
            })
            | Ok(ClientMessage::Count {
                subscription_id, ..
            })
            | Ok(ClientMessage::Close(subscription_id)) => Some(subscription_id),
            _ => None,
        }
    }

    /// Whether this is `["REQ", sub_id, ...]`.
    pub fn is_req(&self, sub_id: &str) -> bool {
        matches!(&self.message, Ok(ClientMessage::Req { subscription_id, .. }) if subscription_id.as_str() == sub_id)
    }

    /// Whether this is `["CLOSE", sub_id]`.
    pub fn is_close(&self, sub_id: &str) -> bool {
        matches!(&self.message, Ok(ClientMessage::Close(id)) if id.as_str() == sub_id)
    }

    /// The event of an EVENT or AUTH message.
    pub fn event(&self) -> Option<&Event> {
        match &self.message {
            Ok(ClientMessage::Event(e)) | Ok(ClientMessage::Auth(e)) => Some(e),
            _ => None,
        }
    }
}

/// A live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Its id.
    pub id: ConnectionId,
    /// Its request path.
    pub path: String,
    /// How many subscriptions it has open.
    pub subscriptions: usize,
    /// The key it authenticated as with NIP-42, if it did.
    pub authenticated: Option<PublicKey>,
}

/// A subscription a client has open (a REQ the relay accepted and no CLOSE has ended).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenSubscription {
    /// The connection it belongs to.
    pub connection: ConnectionId,
    /// That connection's request path.
    pub path: String,
    /// Its id.
    pub subscription_id: SubscriptionId,
    /// Its filters, as the client sent them.
    pub filters: Vec<Filter>,
}

/// A wait of [`TestRelay`] ran out of time before its condition held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    what: String,
    timeout: Duration,
}

impl WaitTimeout {
    /// What was waited for.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// How long.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}",
            self.timeout, self.what
        )
    }
}

impl std::error::Error for WaitTimeout {}

fn open_subscriptions(st: &State, path: Option<&str>) -> Vec<OpenSubscription> {
    let path = path.map(normalise_path);
    st.sessions
        .iter()
        .filter(|(_, s)| path.as_ref().is_none_or(|p| *p == s.path))
        .flat_map(|(id, s)| {
            s.subscriptions
                .iter()
                .map(move |(sub, filters)| OpenSubscription {
                    connection: *id,
                    path: s.path.clone(),
                    subscription_id: sub.clone(),
                    filters: filters.clone(),
                })
        })
        .collect()
}

/// Inspection.
impl TestRelay {
    /// Every frame the relay received, from every connection, in arrival order (empty if
    /// the relay was built with `record_frames(false)`).
    pub fn received(&self) -> Vec<ReceivedFrame> {
        self.shared.read(|st| st.received.clone())
    }

    /// How many frames [`received`](Self::received) holds: a cursor for
    /// [`wait_for_frame_after`](Self::wait_for_frame_after).
    pub fn received_count(&self) -> usize {
        self.shared.read(|st| st.received.len())
    }

    /// How many connections are open now, on every path.
    pub fn connections_now(&self) -> usize {
        self.shared.read(|st| st.sessions.len())
    }

    /// How many connections are open now on `path` (`"/a"`; `""` or `"/"` for the root).
    pub fn connections_now_at(&self, path: &str) -> usize {
        let path = normalise_path(path);
        self.shared
            .read(|st| st.sessions.values().filter(|s| s.path == path).count())
    }

    /// How many connections were ever accepted, on every path (refused upgrades are not
    /// counted; see [`refused_total`](Self::refused_total)).
    pub fn connections_total(&self) -> usize {
        self.shared.read(|st| st.opened.values().sum())
    }

    /// How many connections were ever accepted on `path`.
    pub fn connections_total_at(&self, path: &str) -> usize {
        let path = normalise_path(path);
        self.shared
            .read(|st| st.opened.get(&path).copied().unwrap_or(0))
    }

    /// How many upgrades were refused while refusing was on.
    pub fn refused_total(&self) -> usize {
        self.shared.read(|st| st.refused)
    }

    /// How many WebSocket close frames clients sent, on every path: a client that hangs up
    /// properly sends one before its TCP connection ends; one that just drops the socket
    /// (or dies) does not.
    pub fn closes_received(&self) -> usize {
        self.shared.read(|st| st.closes_received)
    }

    /// The open connections, oldest first.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared.read(|st| {
            st.sessions
                .iter()
                .map(|(id, s)| ConnectionInfo {
                    id: *id,
                    path: s.path.clone(),
                    subscriptions: s.subscriptions.len(),
                    authenticated: s.authenticated,
                })
                .collect()
        })
    }

    /// Every stored event of every path's store, newest first.
    pub fn stored_events(&self) -> Vec<Event> {
        let mut events: Vec<Event> = self.shared.read(|st| {
            st.stores
                .values()
                .flat_map(|s| s.events().cloned())
                .collect()
        });
        events.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        events
    }

    /// The events stored for `path` (the shared store when the store is shared), newest
    /// first.
    pub fn stored_events_at(&self, path: &str) -> Vec<Event> {
        let scope = self.shared.scope(path);
        self.shared.read(|st| {
            st.stores
                .get(&scope)
                .map(|s| s.events().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Every open subscription of every connection, by connection, then id.
    pub fn open_subscriptions(&self) -> Vec<OpenSubscription> {
        self.shared.read(|st| open_subscriptions(st, None))
    }

    /// The open subscriptions of the connections on `path`.
    pub fn open_subscriptions_at(&self, path: &str) -> Vec<OpenSubscription> {
        self.shared.read(|st| open_subscriptions(st, Some(path)))
    }

    /// Waits until `probe` returns `Some`, re-checking after every change of the relay.
    async fn wait_probe<T>(
        &self,
        what: impl FnOnce() -> String,
        timeout: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        let mut changes = self.shared.subscribe();
        let wait = async {
            loop {
                changes.borrow_and_update();
                if let Some(found) = probe() {
                    return Some(found);
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        };
        match actix::clock::timeout(timeout, wait).await {
            Ok(Some(found)) => Ok(found),
            _ => Err(WaitTimeout {
                what: what(),
                timeout,
            }),
        }
    }

    /// Waits for the first received frame (already received or still to come) for which
    /// `pred` holds.
    pub async fn wait_for_frame(
        &self,
        pred: impl Fn(&ReceivedFrame) -> bool,
        timeout: Duration,
    ) -> Result<ReceivedFrame, WaitTimeout> {
        self.wait_for_frame_after(0, pred, timeout).await
    }

    /// Waits for the first frame at index `cursor` or later of
    /// [`received`](Self::received) for which `pred` holds. Take the cursor from
    /// [`received_count`](Self::received_count) before acting, to ignore older frames.
    pub async fn wait_for_frame_after(
        &self,
        cursor: usize,
        pred: impl Fn(&ReceivedFrame) -> bool,
        timeout: Duration,
    ) -> Result<ReceivedFrame, WaitTimeout> {
        let mut next = cursor;
        self.wait_probe(
            || format!("a matching frame (from index {cursor})"),
            timeout,
            || {
                // Copy the new frames out, so `pred` runs without the relay's lock.
                let fresh: Vec<ReceivedFrame> = self
                    .shared
                    .read(|st| st.received.get(next..).map(<[_]>::to_vec))
                    .unwrap_or_default();
                next += fresh.len();
                fresh.into_iter().find(|f| pred(f))
            },
        )
        .await
    }

    /// Waits for `["REQ", sub_id, ...]` from any connection.
    pub async fn wait_for_req(
        &self,
        sub_id: &str,
        timeout: Duration,
    ) -> Result<ReceivedFrame, WaitTimeout> {
        self.wait_for_frame(|f| f.is_req(sub_id), timeout)
            .await
            .map_err(|e| WaitTimeout {
                what: format!("REQ {sub_id:?}"),
                ..e
            })
    }

    /// Waits for `["CLOSE", sub_id]` from any connection.
    pub async fn wait_for_close(
        &self,
        sub_id: &str,
        timeout: Duration,
    ) -> Result<ReceivedFrame, WaitTimeout> {
        self.wait_for_frame(|f| f.is_close(sub_id), timeout)
            .await
            .map_err(|e| WaitTimeout {
                what: format!("CLOSE {sub_id:?}"),
                ..e
            })
    }

    /// Waits until exactly `n` connections are open (all paths).
    pub async fn wait_for_connections(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(), WaitTimeout> {
        self.wait_probe(
            || format!("{n} open connections"),
            timeout,
            || (self.connections_now() == n).then_some(()),
        )
        .await
    }

    /// Waits until at least `n` connections were ever accepted (all paths): a reconnect
    /// happened.
    pub async fn wait_for_connections_total(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(), WaitTimeout> {
        self.wait_probe(
            || format!("{n} connections in total"),
            timeout,
            || (self.connections_total() >= n).then_some(()),
        )
        .await
    }

    /// Waits until `cond` holds for the relay; it is re-checked after every change (a
    /// frame, a connection, a subscription, a stored event).
    ///
    /// ```no_run
    /// # async fn f(relay: &actix_nostr::testing::TestRelay) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// relay
    ///     .wait_until(|r| r.stored_events().len() == 3, Duration::from_secs(5))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_until(
        &self,
        cond: impl Fn(&TestRelay) -> bool,
        timeout: Duration,
    ) -> Result<(), WaitTimeout> {
        self.wait_probe(
            || "a condition".to_owned(),
            timeout,
            || cond(self).then_some(()),
        )
        .await
    }
}
