//! Where a connection's messages go: straight to the user's recipients (same thread), or
//! in batches to a [`Forwarder`] on the user's arbiter (across threads).
//!
//! A message crossing threads costs a wake-up and a context switch (~10 µs of CPU on the
//! reference machine, notes/performance-facts.md): one per event would cost more than
//! parsing it. Batches of up to `delivery_window` messages cross instead, and the forwarder
//! hands them on one by one on its own thread, where a message is cheap.

use actix::prelude::*;
use futures_util::future::join_all;

use super::message::RelayMessage;

/// A batch of messages from one relay, in order.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Batch(pub(crate) Vec<RelayMessage>);

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
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, batch: Batch, _ctx: &mut Context<Self>) -> Self::Result {
        let mut messages = batch.0;
        let Some(last) = messages.pop() else {
            return Box::pin(fut::ready(()));
        };
        for message in messages {
            if let Some((tail, rest)) = self.recipients.split_last() {
                for r in rest {
                    r.do_send(message.clone());
                }
                tail.do_send(message);
            }
        }
        let requests: Vec<_> = self
            .recipients
            .iter()
            .map(|r| r.send(last.clone()))
            .collect();
        Box::pin(join_all(requests).into_actor(self).map(|results, act, _| {
            let mut index = 0;
            act.recipients.retain(|_| {
                let alive = !matches!(results.get(index), Some(Err(MailboxError::Closed)));
                index += 1;
                alive
            });
        }))
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
