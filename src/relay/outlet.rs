//! Where a connection's messages go: straight to the user's recipients (same thread), or
//! in batches to a [`Forwarder`] on the pool's arbiter, where the user's actors usually
//! live (across threads).
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
    type Result = ();

    fn handle(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        let Batch { mut messages, ack } = batch;
        let Some(ack) = ack else {
            for message in messages {
                hand_on(&self.recipients, message);
            }
            return;
        };
        // The window's last message goes with `send`, to learn when it was handled.
        let Some(last) = messages.pop() else {
            // An empty window (never sent): nothing to wait for.
            let _ = ack.send(());
            return;
        };
        for message in messages {
            hand_on(&self.recipients, message);
        }
        let handled = WindowHandled::send(&self.recipients, last);
        // Not waited for here: the next batch is handed on at once, so the user's mailbox
        // never runs dry while the connection refills its window (the connection, not the
        // forwarder, bounds what is in flight).
        ctx.spawn(handled.into_actor(self).map(move |closed, act, _| {
            let _ = ack.send(());
            act.recipients.retain(|r| !closed.contains(r));
        }));
    }
}

/// Hands `message` to every recipient with `do_send` (the last one gets the original).
fn hand_on(recipients: &[Recipient<RelayMessage>], message: RelayMessage) {
    if let Some((last, rest)) = recipients.split_last() {
        for r in rest {
            r.do_send(message.clone());
        }
        last.do_send(message);
    }
}

/// The last message of a window, sent with `send` to every recipient; resolves once all of
/// them handled it, with the recipients whose actor is gone.
///
/// Each `send` goes through a fresh clone of the recipient. actix holds a message back in
/// its request (to be pushed when polled later) only when the *sending handle* is parked
/// by an earlier `send` into a full mailbox; a `do_send` from the long-lived handle would
/// then overtake it. A fresh handle is never parked, so the message is queued right here,
/// in order with the `do_send`s before and after it, and nobody has to wait for it before
/// handing on the next messages.
pub(crate) struct WindowHandled {
    recipients: Vec<Recipient<RelayMessage>>,
    replies: futures_util::future::JoinAll<RecipientRequest<RelayMessage>>,
}

impl WindowHandled {
    pub(crate) fn send(recipients: &[Recipient<RelayMessage>], message: RelayMessage) -> Self {
        let replies = join_all(recipients.iter().map(|r| r.clone().send(message.clone())));
        WindowHandled {
            recipients: recipients.to_vec(),
            replies,
        }
    }
}

impl std::future::Future for WindowHandled {
    type Output = Vec<Recipient<RelayMessage>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let results = std::task::ready!(std::pin::Pin::new(&mut self.replies).poll(cx));
        let closed = self
            .recipients
            .iter()
            .zip(results)
            .filter(|(_, result)| matches!(result, Err(MailboxError::Closed)))
            .map(|(r, _)| r.clone())
            .collect();
        std::task::Poll::Ready(closed)
    }
}

/// What a connection waits for before reading past its next window: the user having
/// handled the window before it.
pub(crate) enum Unacked {
    /// The forwarder's ack (across threads).
    Forwarder(oneshot::Receiver<()>),
    /// The recipients' replies to the window's last message (direct delivery).
    Direct(WindowHandled),
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

    /// Hands one message to the user. Every `delivery_window`-th message is sent with
    /// `send`, and the actor waits (socket unread) until the user has handled the window
    /// before it: two windows at most are in flight, the user never waits for a refill.
    ///
    /// Across threads, messages go in batches: events collect until the window is complete
    /// (`delivery_window` messages since the last acknowledged one) or [`FLUSH_DELAY`]
    /// passes; any other message (EOSE, OK, Disconnected, …) flushes at once, so only events
    /// ever wait.
    pub(crate) fn deliver(&mut self, kind: MessageKind, ctx: &mut Context<Self>) {
        let message = RelayMessage {
            relay: self.url.clone(),
            kind,
        };
        if self.forwarder.is_some() {
            let urgent = !matches!(message.kind, MessageKind::Event { .. });
            self.batch.push(message);
            self.since_ack += 1;
            // A window is counted in messages since the last ack, not in the batch's
            // length: after a partial flush (timer, EOSE) the batch is shorter than that,
            // and waiting for it to fill would stretch the window beyond its size.
            if urgent || self.since_ack >= self.options.delivery_window {
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
            hand_on(&self.recipients, message);
            return;
        }
        // A whole window went out: its last message goes with `send`, and the connection
        // waits (socket unread) for the window before it, so that the user always has the
        // current window to work on while the next one is read and parsed.
        let window = self.since_ack as u64;
        self.since_ack = 0;
        let handled = WindowHandled::send(&self.recipients, message);
        self.wait_for_previous_window(Unacked::Direct(handled), window, ctx);
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
        // The next batch grows as events come: an idle relay keeps no buffer.
        let batch = std::mem::take(&mut self.batch);
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
        self.wait_for_previous_window(Unacked::Forwarder(acked), window, ctx);
    }

    /// Keeps `current` as the window in flight and waits (socket unread) until the one
    /// before it was handled: at most two windows are ever in flight.
    fn wait_for_previous_window(&mut self, current: Unacked, window: u64, ctx: &mut Context<Self>) {
        let Some(previous) = self.unacked.replace(current) else {
            self.shared.stats.in_flight.store(window, Relaxed);
            return;
        };
        self.shared.stats.in_flight.store(2 * window, Relaxed);
        match previous {
            Unacked::Forwarder(acked) => {
                ctx.wait(acked.into_actor(self).map(|result, act, _ctx| {
                    act.resume_after_wait();
                    if result.is_err() {
                        // The forwarder is gone (the pool stopped): nobody is listening.
                        act.forwarder = None;
                        act.unacked = None;
                    }
                }));
            }
            Unacked::Direct(handled) => {
                ctx.wait(handled.into_actor(self).map(|closed, act, _ctx| {
                    act.resume_after_wait();
                    act.recipients.retain(|r| !closed.contains(r));
                }));
            }
        }
    }

    fn resume_after_wait(&mut self) {
        self.last_resume = Instant::now();
        self.shared.stats.in_flight.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::relay::RelayUrl;

    /// Records the notices it handles. The first one says so through `entered` and blocks
    /// the recorder's thread until released. Signals `done` once it has seen `expected`.
    struct Recorder {
        seen: Arc<Mutex<Vec<String>>>,
        entered: Option<oneshot::Sender<()>>,
        gate: Option<mpsc::Receiver<()>>,
        expected: usize,
        done: Option<oneshot::Sender<()>>,
    }

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<RelayMessage> for Recorder {
        type Result = ();
        fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
            if let Some(entered) = self.entered.take() {
                let _ = entered.send(());
            }
            if let Some(gate) = self.gate.take() {
                // Bounded: the test releases the gate or gives up after 10 s.
                let _ = gate.recv_timeout(Duration::from_secs(10));
            }
            if let MessageKind::Notice(text) = msg.kind {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.push(text);
                    if seen.len() == self.expected {
                        if let Some(done) = self.done.take() {
                            let _ = done.send(());
                        }
                    }
                }
            }
        }
    }

    fn batch(range: std::ops::Range<u32>, ack: Option<oneshot::Sender<()>>) -> Batch {
        let relay = RelayUrl::parse("ws://127.0.0.1:1").expect("url");
        Batch {
            messages: range
                .map(|i| RelayMessage {
                    relay: relay.clone(),
                    kind: MessageKind::Notice(i.to_string()),
                })
                .collect(),
            ack,
        }
    }

    /// The forwarder hands batches on without waiting for the user: a window's last message
    /// (sent with `send` into a mailbox over capacity, whose user is stuck) must still stay
    /// ahead of the next batches' messages, and each window's ack must come once the user
    /// handled it.
    #[actix::test]
    async fn windows_keep_their_order_when_the_user_is_stuck_behind_a_full_mailbox() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = mpsc::channel();
        let arbiter = Arbiter::new();
        let recorder_seen = seen.clone();
        let (done, all_seen) = oneshot::channel();
        let (entered, stuck) = oneshot::channel();
        let recorder = Recorder::start_in_arbiter(&arbiter.handle(), move |_| Recorder {
            seen: recorder_seen,
            entered: Some(entered),
            gate: Some(gate),
            expected: 81,
            done: Some(done),
        });
        let forwarder = Forwarder::new(vec![recorder.recipient()]).start();
        let within = Duration::from_secs(10);
        // The user takes a first message and gets stuck with it.
        forwarder.do_send(batch(0..1, None));
        actix::clock::timeout(within, stuck)
            .await
            .expect("the recorder took the first message")
            .expect("entered");
        // Then three batches arrive at once. The mailbox capacity is 16: the first window's
        // `send` fills it, so a second `send` through the same handle would be held back
        // and the third batch's `do_send`s would overtake it.
        let (ack1, acked1) = oneshot::channel();
        let (ack2, acked2) = oneshot::channel();
        forwarder.do_send(batch(1..33, Some(ack1)));
        forwarder.do_send(batch(33..65, Some(ack2)));
        forwarder
            .send(batch(65..81, None))
            .await
            .expect("forwarder alive");
        release.send(()).expect("recorder waits");
        actix::clock::timeout(within, acked1)
            .await
            .expect("first window acked")
            .expect("ack sent");
        actix::clock::timeout(within, acked2)
            .await
            .expect("second window acked")
            .expect("ack sent");
        actix::clock::timeout(within, all_seen)
            .await
            .expect("all 81 handed on")
            .expect("recorder signals");
        let seen = seen.lock().expect("not poisoned").clone();
        let expected: Vec<String> = (0..81).map(|i| i.to_string()).collect();
        assert_eq!(seen, expected);
        arbiter.stop();
    }
}
