//! The await-style requests: [`Subscribe`], [`Unsubscribe`], [`Publish`], [`Fetch`],
//! [`Count`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::{MessageResponse, OneshotSender};
use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::mpsc;

use super::actor::{RelayHandle, RelayPool};
use super::error::PoolError;
use crate::protocol::{CountResult, Event, EventId, Filter, SubscriptionId};
use crate::relay::{
    CloseSub, CountError, CountQuery, FetchEnd, FetchItem, NotSentReason, OpenSub, PublishEvent,
    PublishOutcome, PublishResponder, RelayConnection, RelayUrl, SubTarget,
};

/// How long [`Publish`], [`Fetch`] and [`Count`] wait when no timeout is given.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which relays a request goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Relays {
    /// Every relay with the right flag (read for subscriptions and fetches, write for
    /// publishes), including relays added later (for subscriptions). The default.
    #[default]
    All,
    /// Exactly these relays (URLs are normalised).
    Only(Vec<RelayUrl>),
}

impl Relays {
    /// Only these relays. Fails on a URL that is not a relay URL.
    pub fn only<I, S>(urls: I) -> Result<Self, PoolError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        urls.into_iter()
            .map(|u| RelayUrl::parse(u.as_ref()).map_err(PoolError::from))
            .collect::<Result<Vec<_>, _>>()
            .map(Relays::Only)
    }

    pub(crate) fn includes(&self, url: &RelayUrl) -> bool {
        match self {
            Relays::All => true,
            Relays::Only(list) => list.contains(url),
        }
    }
}

/// A subscription as the pool remembers it.
#[derive(Debug, Clone)]
pub(crate) struct PoolSub {
    pub(crate) filters: Arc<Vec<Filter>>,
    pub(crate) relays: Relays,
    pub(crate) close_on_eose: bool,
}

impl RelayPool {
    fn read_relays<'a>(&'a self, relays: &'a Relays) -> impl Iterator<Item = &'a RelayHandle> {
        self.relays
            .values()
            .filter(move |h| h.options.is_read() && relays.includes(&h.url))
    }
}

// ---- Subscribe / Unsubscribe ---------------------------------------------------------------

/// Opens a subscription on the chosen read relays. Events reach the recipients as
/// [`MessageKind::Event`](crate::relay::MessageKind::Event), verified and de-duplicated,
/// followed by `Eose` from each relay.
///
/// The subscription survives reconnects: on every (re)connect the REQ is sent again with
/// `since` moved up to the newest event already delivered from that relay (minus the
/// relay's `resubscribe_overlap`), so events published during an outage arrive once. With
/// [`Relays::All`] it also goes to relays added later. Replies with the id (the given one,
/// or a generated one), or [`PoolError::DuplicateSubscription`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SubscriptionId, PoolError>")]
pub struct Subscribe {
    /// The filters (OR'ed).
    pub filters: Vec<Filter>,
    /// Which relays.
    pub relays: Relays,
    /// The id; `None` to generate one.
    pub id: Option<SubscriptionId>,
    /// Close it on each relay once that relay sent EOSE (stored events only).
    pub close_on_eose: bool,
}

impl Subscribe {
    /// A live subscription to `filters` on every read relay.
    pub fn new(filters: Vec<Filter>) -> Self {
        Subscribe {
            filters,
            relays: Relays::All,
            id: None,
            close_on_eose: false,
        }
    }

    /// Uses this id.
    pub fn id(mut self, id: impl Into<SubscriptionId>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Only these relays.
    pub fn relays(mut self, relays: Relays) -> Self {
        self.relays = relays;
        self
    }

    /// Closes on each relay after its EOSE.
    pub fn close_on_eose(mut self, on: bool) -> Self {
        self.close_on_eose = on;
        self
    }
}

impl Handler<Subscribe> for RelayPool {
    type Result = Result<SubscriptionId, PoolError>;
    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Err(PoolError::ShuttingDown);
        }
        let id = msg.id.unwrap_or_else(SubscriptionId::generate);
        if self.subs.contains_key(&id) {
            return Err(PoolError::DuplicateSubscription(id));
        }
        let sub = PoolSub {
            filters: Arc::new(msg.filters),
            relays: msg.relays,
            close_on_eose: msg.close_on_eose,
        };
        for handle in self.read_relays(&sub.relays) {
            handle.addr.do_send(OpenSub {
                id: id.clone(),
                filters: sub.filters.clone(),
                target: SubTarget::User,
                close_on_eose: sub.close_on_eose,
            });
        }
        self.subs.insert(id.clone(), sub);
        Ok(id)
    }
}

/// Closes a subscription everywhere (CLOSE to every relay where it is open) and forgets it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PoolError>")]
pub struct Unsubscribe(pub SubscriptionId);

impl Handler<Unsubscribe> for RelayPool {
    type Result = Result<(), PoolError>;
    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) -> Self::Result {
        let sub = self
            .subs
            .remove(&msg.0)
            .ok_or_else(|| PoolError::UnknownSubscription(msg.0.clone()))?;
        for handle in self.read_relays(&sub.relays) {
            handle.addr.do_send(CloseSub(msg.0.clone()));
        }
        Ok(())
    }
}

// ---- Publish -------------------------------------------------------------------------------

/// Publishes a signed event to the chosen write relays and resolves once every relay
/// answered `OK` or the timeout passed, with each relay's [`PublishOutcome`]: accepted,
/// rejected (prefix parsed), sent without answer, or never sent (and why).
///
/// A relay that is not connected keeps the event queued until it connects or the timeout
/// passes. A refusal with `auth-required:` is retried once after authenticating (with keys
/// on the pool). Write-disabled relays are skipped (or, when listed explicitly, reported as
/// [`NotSentReason::WriteDisabled`]).
#[derive(Debug, Clone, Message)]
#[rtype(result = "PublishResult")]
pub struct Publish {
    /// The event.
    pub event: Event,
    /// Which relays.
    pub relays: Relays,
    /// How long to wait for the OKs.
    pub timeout: Duration,
}

impl Publish {
    /// Publishes `event` to every write relay, waiting up to 10 s.
    pub fn new(event: Event) -> Self {
        Publish {
            event,
            relays: Relays::All,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Only these relays.
    pub fn relays(mut self, relays: Relays) -> Self {
        self.relays = relays;
        self
    }

    /// Waits this long at most.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The reply to [`Publish`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishResult {
    /// The published event's id.
    pub event_id: EventId,
    /// Each relay's outcome.
    pub relays: BTreeMap<RelayUrl, PublishOutcome>,
}

impl PublishResult {
    /// How many relays accepted the event.
    pub fn accepted(&self) -> usize {
        self.relays.values().filter(|o| o.is_accepted()).count()
    }
}

impl Handler<Publish> for RelayPool {
    type Result = PublishResponse;
    fn handle(&mut self, msg: Publish, _ctx: &mut Context<Self>) -> PublishResponse {
        let mut result = PublishResult {
            event_id: msg.event.id,
            relays: BTreeMap::new(),
        };
        let targets: Vec<RelayUrl> = match &msg.relays {
            Relays::All => self
                .relays
                .values()
                .filter(|h| h.options.is_write())
                .map(|h| h.url.clone())
                .collect(),
            Relays::Only(list) => list.clone(),
        };
        let mut sends = Vec::with_capacity(targets.len());
        for url in targets {
            match self.relays.get(&url) {
                None => {
                    result
                        .relays
                        .insert(url, PublishOutcome::NotSent(NotSentReason::NotInPool));
                }
                Some(handle) if !handle.options.is_write() => {
                    result
                        .relays
                        .insert(url, PublishOutcome::NotSent(NotSentReason::WriteDisabled));
                }
                Some(handle) => sends.push((url, handle.addr.clone())),
            }
        }
        let event = Box::new(msg.event);
        let timeout = msg.timeout;
        if sends.len() <= 1 {
            // Nothing to gather: the caller's reply goes with the event (see
            // `PublishResponse`), or the result is complete already.
            return PublishResponse(match sends.pop() {
                None => Reply::Ready(result),
                Some((url, connection)) => Reply::One {
                    result,
                    url,
                    connection,
                    event,
                    timeout,
                },
            });
        }
        // Each connection needs its own copy; the last one gets the caller's.
        let mut event = Some(event);
        let last = sends.len() - 1;
        let mut requests = Vec::with_capacity(sends.len());
        for (i, (url, connection)) in sends.into_iter().enumerate() {
            let copy = if i == last {
                event.take()
            } else {
                event.clone()
            };
            let Some(copy) = copy else { break };
            let (reply, outcome) = tokio::sync::oneshot::channel();
            connection.do_send(PublishEvent {
                event: copy,
                timeout,
                reply: PublishResponder::new(move |outcome| {
                    let _ = reply.send(outcome);
                }),
            });
            requests.push(async move {
                let outcome = outcome
                    .await
                    .unwrap_or(PublishOutcome::NotSent(NotSentReason::Removed));
                (url, outcome)
            });
        }
        PublishResponse(Reply::Gather(Box::pin(async move {
            for (url, outcome) in join_all(requests).await {
                result.relays.insert(url, outcome);
            }
            result
        })))
    }
}

/// How the pool answers a [`Publish`]: actix's response type for it, never built or named
/// by users (they get the [`PublishResult`]).
///
/// A publish to several relays gathers their outcomes in a task of the pool's. A publish to
/// one relay (the common case) skips it: the caller's reply channel travels with the event
/// to the relay's connection, whose `OK` handler fills in the result and answers the caller
/// directly. A publish to no relay is answered at once.
pub struct PublishResponse(Reply);

enum Reply {
    Ready(PublishResult),
    One {
        result: PublishResult,
        url: RelayUrl,
        connection: Addr<RelayConnection>,
        event: Box<Event>,
        timeout: Duration,
    },
    Gather(ResponseFuture<PublishResult>),
}

impl MessageResponse<RelayPool, Publish> for PublishResponse {
    fn handle(self, ctx: &mut Context<RelayPool>, tx: Option<OneshotSender<PublishResult>>) {
        match self.0 {
            Reply::Ready(result) => {
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Reply::One {
                mut result,
                url,
                connection,
                event,
                timeout,
            } => {
                // Dropped unanswered (the connection is gone), the responder still answers,
                // with `NotSent(Removed)`.
                let reply = PublishResponder::new(move |outcome| {
                    result.relays.insert(url, outcome);
                    if let Some(tx) = tx {
                        let _ = tx.send(result);
                    }
                });
                connection.do_send(PublishEvent {
                    event,
                    timeout,
                    reply,
                });
            }
            Reply::Gather(gather) => <ResponseFuture<PublishResult> as MessageResponse<
                RelayPool,
                Publish,
            >>::handle(gather, ctx, tx),
        }
    }
}

// ---- Fetch ---------------------------------------------------------------------------------

/// Gathers the stored events matching `filters` from the chosen read relays: a REQ on each,
/// closed after its EOSE. Resolves once every relay sent EOSE (or CLOSED, or dropped, or
/// was removed) or the timeout passed, with the de-duplicated, verified events, newest
/// first. A dead or silent relay costs at most the timeout; what the others sent is kept.
#[derive(Debug, Clone, Message)]
#[rtype(result = "FetchResult")]
pub struct Fetch {
    /// The filters (OR'ed).
    pub filters: Vec<Filter>,
    /// Which relays.
    pub relays: Relays,
    /// How long to wait at most.
    pub timeout: Duration,
}

impl Fetch {
    /// Fetches from every read relay, waiting up to 10 s.
    pub fn new(filters: Vec<Filter>) -> Self {
        Fetch {
            filters,
            relays: Relays::All,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Only these relays.
    pub fn relays(mut self, relays: Relays) -> Self {
        self.relays = relays;
        self
    }

    /// Waits this long at most.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The reply to [`Fetch`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FetchResult {
    /// The events, de-duplicated, newest first.
    pub events: Vec<Event>,
    /// How each relay's part ended.
    pub relays: BTreeMap<RelayUrl, FetchEnd>,
}

impl Handler<Fetch> for RelayPool {
    type Result = ResponseFuture<FetchResult>;
    fn handle(&mut self, msg: Fetch, _ctx: &mut Context<Self>) -> Self::Result {
        let id = SubscriptionId::generate();
        let filters = Arc::new(msg.filters);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut waiting: BTreeMap<RelayUrl, Addr<crate::relay::RelayConnection>> = BTreeMap::new();
        let mut result = FetchResult::default();
        if let Relays::Only(list) = &msg.relays {
            for url in list.iter().filter(|u| !self.relays.contains_key(*u)) {
                result.relays.insert(url.clone(), FetchEnd::Removed);
            }
        }
        for handle in self.read_relays(&msg.relays) {
            handle.addr.do_send(OpenSub {
                id: id.clone(),
                filters: filters.clone(),
                target: SubTarget::Fetch(tx.clone()),
                close_on_eose: true,
            });
            waiting.insert(handle.url.clone(), handle.addr.clone());
        }
        drop(tx);
        let timeout = msg.timeout;
        Box::pin(async move {
            let mut seen = HashSet::new();
            let gather = async {
                while !waiting.is_empty() {
                    match rx.recv().await {
                        Some(FetchItem::Event(event)) => {
                            if seen.insert(event.id) {
                                result.events.push(*event);
                            }
                        }
                        Some(FetchItem::Done(url, end)) => {
                            waiting.remove(&url);
                            result.relays.insert(url, end);
                        }
                        // Every connection dropped its sender (actors gone).
                        None => break,
                    }
                }
            };
            let _ = actix::clock::timeout(timeout, gather).await;
            for (url, addr) in waiting {
                addr.do_send(CloseSub(id.clone()));
                result.relays.entry(url).or_insert(FetchEnd::TimedOut);
            }
            result
                .events
                .sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
            result
        })
    }
}

// ---- Count ---------------------------------------------------------------------------------

/// Asks the chosen read relays how many events match (NIP-45) and resolves with each
/// relay's count or error once all answered or the timeout passed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "CountResults")]
pub struct Count {
    /// The filters (OR'ed).
    pub filters: Vec<Filter>,
    /// Which relays.
    pub relays: Relays,
    /// How long to wait at most.
    pub timeout: Duration,
}

impl Count {
    /// Counts on every read relay, waiting up to 10 s.
    pub fn new(filters: Vec<Filter>) -> Self {
        Count {
            filters,
            relays: Relays::All,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Only these relays.
    pub fn relays(mut self, relays: Relays) -> Self {
        self.relays = relays;
        self
    }

    /// Waits this long at most.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The reply to [`Count`]: each relay's answer.
pub type CountResults = BTreeMap<RelayUrl, Result<CountResult, CountError>>;

impl Handler<Count> for RelayPool {
    type Result = ResponseFuture<CountResults>;
    fn handle(&mut self, msg: Count, _ctx: &mut Context<Self>) -> Self::Result {
        let mut results = CountResults::new();
        if let Relays::Only(list) = &msg.relays {
            for url in list.iter().filter(|u| !self.relays.contains_key(*u)) {
                results.insert(url.clone(), Err(CountError::NotInPool));
            }
        }
        let requests: Vec<_> = self
            .read_relays(&msg.relays)
            .map(|handle| {
                let url = handle.url.clone();
                let request = handle.addr.send(CountQuery {
                    filters: msg.filters.clone(),
                    timeout: msg.timeout,
                });
                async move {
                    let answer = request.await.unwrap_or(Err(CountError::Disconnected));
                    (url, answer)
                }
            })
            .collect();
        Box::pin(async move {
            results.extend(join_all(requests).await);
            results
        })
    }
}
