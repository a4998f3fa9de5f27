//! NIP-42 on one connection: answering challenges by policy, and retrying once what a
//! relay refused with `auth-required:`.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::connection::RelayConnection;
use super::message::MessageKind;
use super::options::AuthPolicy;
use super::outcome::PublishOutcome;
use super::requests::not_sent_reason;
use super::subscriptions::{FetchEnd, FetchItem, SubTarget};
use crate::protocol::{nip42, ClientMessage, EventId, Reason, SubscriptionId};

/// The shortest time between two answers to challenges on one socket. A relay that sends
/// challenges in a loop gets at most one signed answer per second, to its latest challenge
/// (signing costs CPU, and each answer is a frame it can use to keep the loop going).
const AUTH_ANSWER_INTERVAL: Duration = Duration::from_secs(1);

/// NIP-42 state of the current socket.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub(super) challenge: Option<String>,
    /// The id of our AUTH event while its OK is awaited.
    pub(super) sent: Option<EventId>,
    pub(super) authenticated: bool,
    /// Subscriptions refused with `auth-required:`, with the relay's message.
    pub(super) waiting_subs: Vec<(SubscriptionId, String)>,
    /// Publishes refused with `auth-required:`.
    pub(super) waiting_events: Vec<EventId>,
    /// When our last answer was written, and to which challenge.
    answered: Option<(Instant, String)>,
    /// An answer to the latest challenge is scheduled (the interval had not passed).
    answer_scheduled: bool,
}

impl RelayConnection {
    pub(super) fn can_auth(&self) -> bool {
        self.keys.is_some() && self.options.auth != AuthPolicy::Never
    }

    // ---- NIP-42 --------------------------------------------------------------------------

    pub(super) fn on_challenge(&mut self, challenge: String, ctx: &mut Context<Self>) {
        self.auth.challenge = Some(challenge.clone());
        self.auth.authenticated = false;
        self.deliver(MessageKind::Auth { challenge }, ctx);
        let required = self
            .shared
            .info
            .lock()
            .ok()
            .and_then(|i| i.as_ref().and_then(|i| i.limitation.auth_required))
            .unwrap_or(false);
        let eager = self.options.auth == AuthPolicy::Eager
            || (required && self.options.auth == AuthPolicy::Lazy);
        let waiting = !self.auth.waiting_subs.is_empty() || !self.auth.waiting_events.is_empty();
        if self.can_auth() && (eager || waiting) {
            self.answer_challenge(ctx);
        }
    }

    /// Answers the latest challenge now, or once [`AUTH_ANSWER_INTERVAL`] has passed since
    /// the last answer; a challenge already answered is not answered again.
    fn answer_challenge(&mut self, ctx: &mut Context<Self>) {
        if self.auth.answer_scheduled {
            return;
        }
        let now = Instant::now();
        match &self.auth.answered {
            Some((_, c)) if Some(c) == self.auth.challenge.as_ref() => {}
            Some((at, _)) if now < *at + AUTH_ANSWER_INTERVAL => {
                self.auth.answer_scheduled = true;
                let generation = self.generation;
                ctx.run_later(*at + AUTH_ANSWER_INTERVAL - now, move |act, _| {
                    if act.generation == generation {
                        act.auth.answer_scheduled = false;
                        act.send_auth();
                    }
                });
            }
            _ => self.send_auth(),
        }
    }

    pub(super) fn ensure_auth(&mut self, ctx: &mut Context<Self>) {
        if self.auth.authenticated {
            // Authenticated already, and still refused: retry once anyway, the answer decides.
            self.on_auth_answer(true, ctx);
        } else if self.auth.sent.is_none() && self.auth.challenge.is_some() {
            self.send_auth();
        }
        // Otherwise: our AUTH is in flight, or the challenge has not come yet; both lead
        // back here through `on_auth_answer` / `on_challenge`.
    }

    pub(super) fn send_auth(&mut self) {
        let (Some(keys), Some(challenge)) = (self.keys.as_ref(), self.auth.challenge.as_ref())
        else {
            return;
        };
        let event = nip42::auth_event(keys, self.url.as_str(), challenge);
        self.auth.sent = Some(event.id);
        self.auth.answered = Some((Instant::now(), challenge.clone()));
        self.recently_sent.insert(&event.id);
        log::debug!("{}: answering AUTH challenge", self.url);
        self.write_control(&ClientMessage::Auth(Box::new(event)));
    }

    pub(super) fn on_auth_answer(&mut self, accepted: bool, ctx: &mut Context<Self>) {
        self.auth.sent = None;
        self.auth.authenticated = accepted;
        let subs = std::mem::take(&mut self.auth.waiting_subs);
        let events = std::mem::take(&mut self.auth.waiting_events);
        if accepted {
            log::info!("{}: authenticated", self.url);
            self.send_pending_reqs();
            for id in events {
                if let Some(pending) = self.pending_ok.get(&id) {
                    let json = ClientMessage::event_json(&pending.event);
                    if let Err(e) = self.enqueue_or_send_json(json, Some(id)) {
                        self.resolve_publish(&id, PublishOutcome::NotSent(not_sent_reason(&e)));
                    }
                }
            }
            return;
        }
        log::warn!("{}: authentication refused", self.url);
        for (id, message) in subs {
            let removed = self.subs.remove(&id);
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
        for id in events {
            self.resolve_publish(
                &id,
                PublishOutcome::Rejected {
                    reason: Reason::AuthRequired,
                    message: "auth-required: authentication was refused".into(),
                },
            );
        }
    }
}
