//! What a connection does with relay frames and with the pool's requests: subscriptions,
//! publishes waiting for `OK`, COUNT queries, and NIP-42 authentication.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::connection::RelayConnection;
use super::deadlines::Deadline;
use super::error::RelayError;
use super::message::MessageKind;
use super::outcome::{CountError, NotSentReason, PublishOutcome};
use super::stats::RelayStats;
use super::subscriptions::{ConnSub, FetchEnd, FetchItem, SubTarget};
use crate::protocol::{
    ClientMessage, CountResult, Event, EventId, Filter, Reason, RelayFrame, SubscriptionId,
};

/// Delays before re-sending a REQ the relay closed with `rate-limited:`; after the last,
/// the CLOSED is reported.
const RATE_LIMIT_RETRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
];

/// Where one relay's [`PublishOutcome`] goes: called once with it, or, if dropped
/// unanswered (the connection is gone, its mailbox closed), with
/// `NotSent(NotSentReason::Removed)`.
///
/// A callback rather than a channel: the pool's `Publish` to a single relay hands the
/// caller's own reply to the connection this way, so the `OK` handler answers the caller
/// directly, with no task of the pool's in between.
pub(crate) struct PublishResponder(Option<Box<dyn FnOnce(PublishOutcome) + Send>>);

impl PublishResponder {
    pub(crate) fn new(respond: impl FnOnce(PublishOutcome) + Send + 'static) -> Self {
        PublishResponder(Some(Box::new(respond)))
    }

    /// Answers with `outcome`.
    pub(crate) fn respond(mut self, outcome: PublishOutcome) {
        if let Some(respond) = self.0.take() {
            respond(outcome);
        }
    }
}

impl Drop for PublishResponder {
    fn drop(&mut self) {
        if let Some(respond) = self.0.take() {
            respond(PublishOutcome::NotSent(NotSentReason::Removed));
        }
    }
}

impl std::fmt::Debug for PublishResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PublishResponder(waiting)"
        } else {
            "PublishResponder(answered)"
        })
    }
}

/// A publish waiting for its `OK`.
#[derive(Debug)]
pub(crate) struct PendingPublish {
    pub(super) event: Box<Event>,
    /// Each waiting `Publish`, with the token its own timeout timer carries.
    responders: Vec<(u64, PublishResponder)>,
    /// Written to a socket (so a timeout means "no answer", not "never sent").
    pub(crate) sent: bool,
    auth_retried: bool,
}

impl PendingPublish {
    fn resolve(self, outcome: PublishOutcome) {
        for (_, r) in self.responders {
            r.respond(outcome.clone());
        }
    }
}

/// A COUNT waiting for its answer.
#[derive(Debug)]
pub(crate) struct PendingCount(oneshot::Sender<Result<CountResult, CountError>>);

impl PendingCount {
    pub(crate) fn fail(self, error: CountError) {
        let _ = self.0.send(Err(error));
    }
}

impl RelayConnection {
    // ---- frames from the relay -----------------------------------------------------------

    pub(crate) fn on_relay_frame(&mut self, frame: RelayFrame, ctx: &mut Context<Self>) {
        match frame {
            RelayFrame::Event {
                subscription_id,
                event,
            } => self.on_event(subscription_id.as_str(), event, ctx),
            RelayFrame::Ok {
                event_id,
                accepted,
                message,
            } => self.on_ok(event_id, accepted, message, ctx),
            RelayFrame::Eose(id) => self.on_eose(id, ctx),
            RelayFrame::Closed {
                subscription_id,
                message,
            } => self.on_closed(subscription_id, message, ctx),
            RelayFrame::Notice(text) => self.deliver(MessageKind::Notice(text), ctx),
            RelayFrame::Auth { challenge } => self.on_challenge(challenge, ctx),
            RelayFrame::Count {
                subscription_id,
                result,
            } => match self.pending_counts.remove(&subscription_id) {
                Some(PendingCount(tx)) => {
                    let _ = tx.send(Ok(result));
                }
                None => self.deliver(
                    MessageKind::Count {
                        subscription_id,
                        result,
                    },
                    ctx,
                ),
            },
        }
    }

    /// The hot path: recompute the id, skip the signature check if this id verified
    /// before (on any relay of the pool), deliver once per subscription.
    ///
    /// The subscription id comes as the frame has it; what is delivered carries the
    /// subscription's own (shared) id.
    pub(crate) fn on_event(
        &mut self,
        subscription_id: &str,
        event: Box<Event>,
        ctx: &mut Context<Self>,
    ) {
        RelayStats::add(&self.shared.stats.events_received, 1);
        let Some((subscription_id, sub)) = self.subs.get_mut(subscription_id) else {
            if self.subs.was_recently_closed(subscription_id) {
                // Sent before the relay processed our CLOSE: expected, counted, not an error.
                RelayStats::add(&self.shared.stats.events_duplicate, 1);
            } else {
                self.report_error(
                    RelayError::UnknownSubscription {
                        subscription_id: SubscriptionId::from(subscription_id),
                        event_id: event.id,
                    },
                    ctx,
                );
            }
            return;
        };
        // Set when this event's signature was checked now: remembered together with its
        // delivery, under one lock of the de-dup memory.
        let mut checked_now = None;
        if self.options.verify_events {
            // The id is recomputed once; only an event not verified before (same id and
            // signature, on any relay of the pool) costs a signature check.
            let computed = event.compute_id();
            let result = if computed != event.id {
                Err(crate::protocol::Error::IdMismatch {
                    claimed: event.id,
                    computed,
                })
            } else {
                let key = self.dedup.verified_key(&computed, &event.sig);
                if self.dedup.is_verified(key) {
                    Ok(())
                } else {
                    RelayStats::add(&self.shared.stats.verifications, 1);
                    checked_now = Some(key);
                    event.verify_signature()
                }
            };
            if let Err(error) = result {
                RelayStats::add(&self.shared.stats.events_invalid, 1);
                log::warn!("{}: dropped forged event {}: {error}", self.url, event.id);
                self.report_error(
                    RelayError::InvalidEvent {
                        subscription_id,
                        event_id: event.id,
                        error: Box::new(error),
                    },
                    ctx,
                );
                return;
            }
        }
        if !sub.filters.iter().any(|f| f.matches(&event)) {
            if let Some(key) = checked_now {
                self.dedup.mark_verified(key);
            }
            RelayStats::add(&self.shared.stats.events_invalid, 1);
            self.report_error(
                RelayError::UnrequestedEvent {
                    subscription_id,
                    event_id: event.id,
                },
                ctx,
            );
            return;
        }
        let first = self
            .dedup
            .first_delivery(checked_now, &event.id, sub.dedup_key);
        sub.saw_event(event.created_at);
        if !first {
            RelayStats::add(&self.shared.stats.events_duplicate, 1);
            return;
        }
        RelayStats::add(&self.shared.stats.events_delivered, 1);
        match &sub.target {
            SubTarget::Fetch(tx) => {
                let _ = tx.send(FetchItem::Event(event));
            }
            SubTarget::User => self.deliver(
                MessageKind::Event {
                    subscription_id,
                    event,
                },
                ctx,
            ),
        }
    }

    fn on_eose(&mut self, id: SubscriptionId, ctx: &mut Context<Self>) {
        let Some(sub) = self.subs.subs.get_mut(&id) else {
            // EOSE for a closed or unknown subscription: harmless, ignored.
            return;
        };
        if !sub.saw_eose() {
            self.report_error(
                RelayError::RepeatedEose {
                    subscription_id: id,
                },
                ctx,
            );
            return;
        }
        if sub.is_fetch() || sub.close_on_eose {
            if let Some(ConnSub {
                target: SubTarget::Fetch(tx),
                ..
            }) = self.close_sub(&id, true)
            {
                let _ = tx.send(FetchItem::Done(self.url.clone(), FetchEnd::Eose));
                return;
            }
        }
        self.deliver(MessageKind::Eose(id), ctx);
    }

    fn on_closed(&mut self, id: SubscriptionId, message: String, ctx: &mut Context<Self>) {
        if let Some(pending) = self.pending_counts.remove(&id) {
            pending.fail(CountError::Closed(message));
            return;
        }
        let can_auth = self.can_auth();
        let Some(sub) = self.subs.subs.get_mut(&id) else {
            self.deliver(
                MessageKind::Closed {
                    subscription_id: id,
                    message,
                },
                ctx,
            );
            return;
        };
        sub.live = false;
        match Reason::parse(&message) {
            Reason::AuthRequired if can_auth && !sub.auth_retried => {
                sub.auth_retried = true;
                log::info!("{}: {id} needs auth; authenticating and retrying", self.url);
                self.auth.waiting_subs.push((id, message));
                self.ensure_auth(ctx);
                return;
            }
            Reason::RateLimited if (sub.rate_retries as usize) < RATE_LIMIT_RETRIES.len() => {
                let delay = RATE_LIMIT_RETRIES[sub.rate_retries as usize];
                sub.rate_retries += 1;
                log::info!("{}: {id} rate-limited; retrying in {delay:?}", self.url);
                let generation = self.generation;
                ctx.run_later(delay, move |act, _| {
                    if act.generation == generation {
                        act.send_pending_reqs();
                    }
                });
                return;
            }
            _ => {}
        }
        let removed = self.subs.remove(&id);
        self.send_pending_reqs();
        match removed.map(|s| s.target) {
            Some(SubTarget::Fetch(tx)) => {
                let _ = tx.send(FetchItem::Done(self.url.clone(), FetchEnd::Closed(message)));
            }
            _ => self.deliver(
                MessageKind::Closed {
                    subscription_id: id,
                    message,
                },
                ctx,
            ),
        }
    }

    fn on_ok(
        &mut self,
        event_id: EventId,
        accepted: bool,
        message: String,
        ctx: &mut Context<Self>,
    ) {
        if self.auth.sent == Some(event_id) {
            self.on_auth_answer(accepted, ctx);
        } else if let Some(mut pending) = self.pending_ok.remove(&event_id) {
            let reason = Reason::parse(&message);
            if accepted {
                pending.resolve(PublishOutcome::Accepted {
                    message: message.clone(),
                });
            } else if reason == Reason::AuthRequired && self.can_auth() && !pending.auth_retried {
                pending.auth_retried = true;
                pending.sent = false;
                self.pending_ok.insert(event_id, pending);
                self.auth.waiting_events.push(event_id);
                self.ensure_auth(ctx);
            } else {
                pending.resolve(PublishOutcome::Rejected {
                    reason,
                    message: message.clone(),
                });
            }
        } else if !self.recently_sent.contains(&event_id) {
            self.report_error(RelayError::UnsolicitedOk { event_id }, ctx);
            return;
        }
        self.deliver(
            MessageKind::Ok {
                event_id,
                accepted,
                message,
            },
            ctx,
        );
    }

    // ---- subscriptions -------------------------------------------------------------------

    /// Sends REQs for every subscription not live on this socket, within the relay's
    /// `max_subscriptions`. Subscriptions waiting for auth are left alone.
    pub(crate) fn send_pending_reqs(&mut self) {
        if !self.is_connected() {
            return;
        }
        let overlap = self.options.resubscribe_overlap;
        for id in self.subs.sendable() {
            if self.auth.waiting_subs.iter().any(|(w, _)| w == &id) {
                continue;
            }
            let Some(sub) = self.subs.subs.get(&id) else {
                continue;
            };
            let filters = sub.req_filters(overlap);
            let message = ClientMessage::Req {
                subscription_id: id.clone(),
                filters,
            };
            if self.write_control(&message) {
                if let Some(sub) = self.subs.subs.get_mut(&id) {
                    sub.req_sent();
                }
            }
        }
    }

    /// Forgets a subscription and, if it was live, sends CLOSE; then sends REQs that the
    /// relay's limit held back.
    fn close_sub(&mut self, id: &SubscriptionId, send_close: bool) -> Option<ConnSub> {
        let sub = self.subs.remove(id)?;
        if sub.live && send_close {
            self.write_control(&ClientMessage::Close(id.clone()));
        }
        self.send_pending_reqs();
        Some(sub)
    }

    pub(super) fn resolve_publish(&mut self, id: &EventId, outcome: PublishOutcome) {
        if let Some(pending) = self.pending_ok.remove(id) {
            pending.resolve(outcome);
        }
    }

    /// The socket is gone while these publishes wait for their `OK`: written to it (the
    /// relay may never have read them) or held for an AUTH that the next socket will not
    /// remember. They go back to the front of the queue, to be sent again on the next
    /// socket; a relay that did store one answers `duplicate:`, which counts as accepted.
    pub(crate) fn requeue_unanswered_publishes(&mut self) {
        let queued: std::collections::HashSet<EventId> =
            self.queue.iter().filter_map(|out| out.publishes).collect();
        for (id, pending) in &self.pending_ok {
            if queued.contains(id) {
                continue;
            }
            self.queue.push_front(super::connection::Outgoing {
                json: ClientMessage::event_json(&pending.event),
                publishes: Some(*id),
            });
        }
        self.auth.waiting_events.clear();
        self.stats().queued.store(self.queue.len() as u64, Relaxed);
    }

    pub(crate) fn fail_all_publishes(&mut self, shutting_down: bool) {
        for (_, pending) in self.pending_ok.drain() {
            let outcome = match (shutting_down, pending.sent) {
                (true, sent) => PublishOutcome::ShuttingDown { sent },
                (false, true) => PublishOutcome::NoAnswer,
                (false, false) => PublishOutcome::NotSent(NotSentReason::Removed),
            };
            pending.resolve(outcome);
        }
    }

    /// The timeout of one `Publish` (identified by `token`) ran out: that caller gets "no
    /// answer" if the event was written, "never sent" otherwise. When nobody waits any more,
    /// the event is withdrawn from the queue.
    fn publish_timeout(&mut self, id: EventId, token: u64) {
        let Some(pending) = self.pending_ok.get_mut(&id) else {
            return;
        };
        let Some(index) = pending.responders.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, responder) = pending.responders.swap_remove(index);
        let sent = pending.sent;
        let outcome = if sent {
            PublishOutcome::NoAnswer
        } else {
            PublishOutcome::NotSent(NotSentReason::NotConnected)
        };
        responder.respond(outcome);
        if pending.responders.is_empty() {
            self.pending_ok.remove(&id);
            self.auth.waiting_events.retain(|w| w != &id);
            // Unsent, or queued again after its socket died: nobody waits for it now.
            self.queue.retain(|out| out.publishes != Some(id));
            self.stats().queued.store(self.queue.len() as u64, Relaxed);
        }
    }
}

impl RelayConnection {
    /// Queues a request timeout and arms the one timer if this deadline comes first.
    fn add_deadline(&mut self, at: Instant, what: Deadline, ctx: &mut Context<Self>) {
        if self.deadlines.push(at, what) {
            self.arm_deadline_timer(ctx);
        }
    }

    /// (Re-)arms the timer for the earliest waiting deadline.
    pub(super) fn arm_deadline_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.deadline_timer.take() {
            ctx.cancel_future(handle);
        }
        self.deadlines.armed_for = None;
        let Some(at) = self.deadlines.next() else {
            return;
        };
        self.deadlines.armed_for = Some(at);
        let delay = at.saturating_duration_since(Instant::now());
        self.deadline_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.deadline_timer = None;
            act.deadlines.armed_for = None;
            for due in act.deadlines.pop_due(Instant::now()) {
                match due {
                    Deadline::Publish(id, token) => act.publish_timeout(id, token),
                    Deadline::Count(id) => {
                        if let Some(pending) = act.pending_counts.remove(&id) {
                            pending.fail(CountError::Timeout);
                        }
                    }
                }
            }
            act.arm_deadline_timer(ctx);
        }));
    }
}

pub(super) fn not_sent_reason(error: &RelayError) -> NotSentReason {
    match error {
        RelayError::QueueFull { .. } => NotSentReason::QueueFull,
        RelayError::TooLargeForRelay { .. } => NotSentReason::TooLarge,
        _ => NotSentReason::Removed,
    }
}

// ---- messages from the pool --------------------------------------------------------------

/// Opens (or replaces) a subscription on this relay: REQ now if connected, and again on
/// every reconnect.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct OpenSub {
    pub(crate) id: SubscriptionId,
    pub(crate) filters: Arc<Vec<Filter>>,
    pub(crate) target: SubTarget,
    pub(crate) close_on_eose: bool,
}

impl Handler<OpenSub> for RelayConnection {
    type Result = ();
    fn handle(&mut self, msg: OpenSub, _ctx: &mut Context<Self>) {
        if self.removed {
            if let SubTarget::Fetch(tx) = msg.target {
                let _ = tx.send(FetchItem::Done(self.url.clone(), FetchEnd::Removed));
            }
            return;
        }
        let replaced = self.subs.subs.get(&msg.id).is_some_and(|s| s.live);
        let mut sub = ConnSub::new(msg.filters, msg.target, msg.close_on_eose);
        sub.dedup_key = self.dedup.subscription_key(&msg.id, &self.url);
        // A replaced REQ keeps its place in the relay's count: the relay replaces it too.
        sub.live = false;
        self.subs.insert(msg.id.clone(), sub);
        if replaced && self.is_connected() {
            let overlap = self.options.resubscribe_overlap;
            if let Some(sub) = self.subs.subs.get_mut(&msg.id) {
                let message = ClientMessage::Req {
                    subscription_id: msg.id.clone(),
                    filters: sub.req_filters(overlap),
                };
                sub.req_sent();
                self.write_control(&message);
            }
            return;
        }
        self.send_pending_reqs();
    }
}

/// Closes a subscription on this relay (CLOSE if live) and forgets it. For a fetch, tells
/// the fetch this relay timed out.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct CloseSub(pub(crate) SubscriptionId);

impl Handler<CloseSub> for RelayConnection {
    type Result = ();
    fn handle(&mut self, msg: CloseSub, _ctx: &mut Context<Self>) {
        if let Some(sub) = self.close_sub(&msg.0, true) {
            if let SubTarget::Fetch(tx) = sub.target {
                let _ = tx.send(FetchItem::Done(self.url.clone(), FetchEnd::TimedOut));
            }
        }
    }
}

/// Publishes an event; this relay's outcome goes to `reply` within `timeout` (or
/// `NotSent(Removed)` if the connection is gone). A responder rather than a `send`
/// response: the outcome then reaches the waiting caller directly from the `OK` handler,
/// without a task in between.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct PublishEvent {
    pub(crate) event: Box<Event>,
    pub(crate) timeout: Duration,
    pub(crate) reply: PublishResponder,
}

impl Handler<PublishEvent> for RelayConnection {
    type Result = ();
    fn handle(&mut self, msg: PublishEvent, ctx: &mut Context<Self>) {
        if self.removed {
            msg.reply
                .respond(PublishOutcome::NotSent(NotSentReason::Removed));
            return;
        }
        if !self.options.write {
            msg.reply
                .respond(PublishOutcome::NotSent(NotSentReason::WriteDisabled));
            return;
        }
        let id = msg.event.id;
        self.next_token = self.next_token.wrapping_add(1);
        let token = self.next_token;
        if let Some(pending) = self.pending_ok.get_mut(&id) {
            pending.responders.push((token, msg.reply));
        } else {
            let json = ClientMessage::event_json(&msg.event);
            self.pending_ok.insert(
                id,
                PendingPublish {
                    event: msg.event,
                    responders: vec![(token, msg.reply)],
                    sent: false,
                    auth_retried: false,
                },
            );
            if let Err(e) = self.enqueue_or_send_json(json, Some(id)) {
                self.resolve_publish(&id, PublishOutcome::NotSent(not_sent_reason(&e)));
            }
        }
        self.add_deadline(
            Instant::now() + msg.timeout,
            Deadline::Publish(id, token),
            ctx,
        );
    }
}

/// Sends a NIP-45 COUNT and resolves with the relay's answer within `timeout`.
#[derive(Debug, Message)]
#[rtype(result = "Result<CountResult, CountError>")]
pub(crate) struct CountQuery {
    pub(crate) filters: Vec<Filter>,
    pub(crate) timeout: Duration,
}

impl Handler<CountQuery> for RelayConnection {
    type Result = ResponseFuture<Result<CountResult, CountError>>;
    fn handle(&mut self, msg: CountQuery, ctx: &mut Context<Self>) -> Self::Result {
        let id = SubscriptionId::generate();
        let (tx, rx) = oneshot::channel();
        let message = ClientMessage::Count {
            subscription_id: id.clone(),
            filters: msg.filters,
        };
        if let Err(e) = self.enqueue_or_send(&message) {
            return Box::pin(async move { Err(CountError::NotSent(e)) });
        }
        self.pending_counts.insert(id.clone(), PendingCount(tx));
        self.add_deadline(Instant::now() + msg.timeout, Deadline::Count(id), ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(CountError::Disconnected)) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A responder dropped unanswered (its connection went away with the message) still
    /// answers, with `NotSent(Removed)`; one that answered does not answer twice.
    #[test]
    fn a_responder_always_answers_exactly_once() {
        let (tx, rx) = mpsc::channel();
        let dropped = {
            let tx = tx.clone();
            PublishResponder::new(move |outcome| {
                let _ = tx.send(outcome);
            })
        };
        drop(dropped);
        assert_eq!(
            rx.try_recv(),
            Ok(PublishOutcome::NotSent(NotSentReason::Removed))
        );
        let answered = PublishResponder::new(move |outcome| {
            let _ = tx.send(outcome);
        });
        answered.respond(PublishOutcome::NoAnswer);
        assert_eq!(rx.try_recv(), Ok(PublishOutcome::NoAnswer));
        assert!(rx.try_recv().is_err(), "answered twice");
    }
}
