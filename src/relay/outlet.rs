//! Where a connection's messages go: straight to the user's recipients (same thread), or
//! in batches to a [`Forwarder`] on the user's arbiter (across threads).
//!
//! A message crossing threads costs a wake-up and a context switch (~10 µs of CPU on the
//! reference machine, notes/performance-facts.md): one per event would cost more than
//! parsing it. Batches of up to `delivery_window` messages cross instead, and the forwarder
//! hands them on one by one on its own thread, where a message is cheap.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::connection::RelayConnection;
use super::message::{MessageKind, RelayMessage};

/// A batch of messages from one relay, in order. With `ack`, the forwarder signals it once
/// the recipients have handled the batch's last message.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Batch {
    pub(crate) messages: Vec<RelayMessage>,
    pub(crate) ack: Option<oneshot::Sender<()>>,
}

/// Runs on the user's arbiter; hands every message of every batch to the recipients in
/// order. Its reply to a batch comes once the recipients have handled the batch's last
/// message, which is what a connection waits for when its delivery window is full.
pub(crate) struct Forwarder {
    recipients: Vec<Recipient<RelayMessage>>,
}

impl Forwarder {
    pub(crate) fn new(recipients: Vec<Recipient<RelayMessage>>) -> Self {
        Forwarder { recipients }
    }
}

impl Actor for Forwarder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Every connection of the pool sends here; each sender has its own guaranteed
        // slot on top of this.
        ctx.set_mailbox_capacity(64);
    }
}

impl Handler<Batch> for Forwarder {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, batch: Batch, _ctx: &mut Context<Self>) -> Self::Result {
        let Batch { mut messages, ack } = batch;
        let last = match (&ack, messages.pop()) {
            (_, None) => {
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
                return AtomicResponse::new(Box::pin(fut::ready(())));
            }
            // Without an ack nobody waits: hand the last one on like the others.
            (None, Some(last)) => {
                messages.push(last);
                None
            }
            (Some(_), Some(last)) => Some(last),
        };
        for message in messages {
            if let Some((tail, rest)) = self.recipients.split_last() {
                for r in rest {
                    r.do_send(message.clone());
                }
                tail.do_send(message);
            }
        }
        let Some(last) = last else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let requests: Vec<_> = self
            .recipients
            .iter()
            .map(|r| r.send(last.clone()))
            .collect();
        let handed_on = Box::pin(join_all(requests).into_actor(self).map(
            move |results, act, _| {
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
                if results.len() == act.recipients.len() {
                    let mut index = 0;
                    act.recipients.retain(|_| {
                        let alive = !matches!(results.get(index), Some(Err(MailboxError::Closed)));
                        index += 1;
                        alive
                    });
                }
            },
        ));
        // Atomic: no later batch is handed on before this one's last message was handled.
        // `send` waits while a mailbox is over capacity, and the `do_send`s of the relay's
        // next batch would overtake it (per-relay order lost).
        AtomicResponse::new(handed_on)
    }
}

/// Replaces the list of recipients (the pool's `AddRecipient` / `RemoveRecipient`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct SetRecipients(pub(crate) Vec<Recipient<RelayMessage>>);

impl Handler<SetRecipients> for Forwarder {
    type Result = ();
    fn handle(&mut self, msg: SetRecipients, _ctx: &mut Context<Self>) {
        self.recipients = msg.0;
    }
}

impl Handler<SetRecipients> for RelayConnection {
    type Result = ();
    fn handle(&mut self, msg: SetRecipients, _ctx: &mut Context<Self>) {
        // Only a connection that delivers directly holds recipients; one that goes through
        // the forwarder is unaffected (the pool updates the forwarder).
        if self.forwarder.is_none() {
            self.recipients = msg.0;
        }
    }
}

/// A connection's way to the user.
#[derive(Clone)]
pub(crate) enum Outlet {
    /// The recipients, on the connection's own thread (or wherever they are).
    Direct(Vec<Recipient<RelayMessage>>),
    /// A forwarder on the user's arbiter, reached in batches.
    Batched(Recipient<Batch>),
}

/// The longest an event waits for its batch to fill before crossing threads anyway.
const FLUSH_DELAY: Duration = Duration::from_millis(1);
impl RelayConnection {
    // ---- delivering ----------------------------------------------------------------------

    /// Hands one message to the user: every `delivery_window`-th message is sent with
    /// `send` and the actor waits (socket unread) until the user has handled it.
    ///
    /// Across threads, messages go in batches: events collect until the batch holds
    /// `delivery_window` messages or [`FLUSH_DELAY`] passes; any other message (EOSE, OK,
    /// Disconnected, …) flushes at once, so only events ever wait.
    pub(crate) fn deliver(&mut self, kind: MessageKind, ctx: &mut Context<Self>) {
        let message = RelayMessage {
            relay: self.url.clone(),
            kind,
        };
        if self.forwarder.is_some() {
            let urgent = !matches!(message.kind, MessageKind::Event { .. });
            self.batch.push(message);
            self.since_ack += 1;
            if urgent || self.batch.len() >= self.options.delivery_window {
                self.flush_batch(ctx);
            } else if self.flush_timer.is_none() {
                self.flush_timer = Some(ctx.run_later(FLUSH_DELAY, |act, ctx| {
                    act.flush_timer = None;
                    act.flush_batch(ctx);
                }));
            }
            return;
        }
        if self.recipients.is_empty() {
            return;
        }
        self.since_ack += 1;
        if self.since_ack < self.options.delivery_window {
            let (last, rest) = match self.recipients.split_last() {
                Some(split) => split,
                None => return,
            };
            for r in rest {
                r.do_send(message.clone());
            }
            last.do_send(message);
            return;
        }
        self.since_ack = 0;
        let window = self.options.delivery_window as u64;
        self.shared.stats.in_flight.store(window, Relaxed);
        let requests: Vec<_> = self
            .recipients
            .iter()
            .map(|r| r.send(message.clone()))
            .collect();
        let wait = futures_util::future::join_all(requests);
        ctx.wait(wait.into_actor(self).map(|results, act, _ctx| {
            act.resume_after_wait();
            let mut index = 0;
            act.recipients.retain(|_| {
                let alive = !matches!(results.get(index), Some(Err(MailboxError::Closed)));
                index += 1;
                alive
            });
        }));
    }

    /// Sends the collected batch to the forwarder. Every window, waits (socket unread)
    /// until the user has handled the window before.
    fn flush_batch(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.flush_timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(forwarder) = self.forwarder.clone() else {
            return;
        };
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(
            &mut self.batch,
            Vec::with_capacity(self.options.delivery_window.min(256)),
        );
        if self.since_ack < self.options.delivery_window {
            forwarder.do_send(Batch {
                messages: batch,
                ack: None,
            });
            return;
        }
        // A whole window went out: ask for an ack of this one, and wait (socket unread) for
        // the ack of the previous one. Two windows in flight keep the consumer busy while
        // the next window is read and parsed; memory stays bounded by two windows.
        let window = self.since_ack as u64;
        self.since_ack = 0;
        let (ack, acked) = oneshot::channel();
        forwarder.do_send(Batch {
            messages: batch,
            ack: Some(ack),
        });
        let Some(previous) = self.unacked.replace(acked) else {
            self.shared.stats.in_flight.store(window, Relaxed);
            return;
        };
        self.shared.stats.in_flight.store(2 * window, Relaxed);
        ctx.wait(previous.into_actor(self).map(|result, act, _ctx| {
            act.resume_after_wait();
            if result.is_err() {
                // The forwarder is gone (the pool stopped): nobody is listening.
                act.forwarder = None;
                act.unacked = None;
            }
        }));
    }

    fn resume_after_wait(&mut self) {
        self.last_resume = Instant::now();
        self.shared.stats.in_flight.store(0, Relaxed);
    }
}
