//! Helpers for the pool's behaviour tests: a user actor that records every `RelayMessage`
//! into a channel, and bounded waits on it. Tests never sleep to synchronise: they await
//! the message that proves the behaviour, with a timeout.
#![allow(dead_code)]

use std::time::Duration;

use actix::prelude::*;
use actix_nostr::protocol::EventId;
use actix_nostr::relay::{MessageKind, RelayMessage, RelayOptions};
use tokio::sync::mpsc;

/// The bound on every wait in these tests. Generous: CI machines are shared and slow.
pub const WAIT: Duration = Duration::from_secs(10);

/// Options for tests: quick retries without jitter, quick pings.
pub fn fast_options() -> RelayOptions {
    RelayOptions::new()
        .backoff(vec![Duration::from_millis(50), Duration::from_millis(100)])
        .jitter(0.0)
        .stable_after(Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(5))
}

/// Records every message it receives.
pub struct Recorder {
    tx: mpsc::UnboundedSender<RelayMessage>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for Recorder {
    type Result = ();
    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        let _ = self.tx.send(msg);
    }
}

/// The receiving end of a [`Recorder`].
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<RelayMessage>,
    /// Everything received so far, in order.
    pub seen: Vec<RelayMessage>,
    /// Received but not yet matched by an `expect`, in order: waits match in any order.
    backlog: std::collections::VecDeque<RelayMessage>,
}

/// Starts a recorder; hand `recipient` to the pool.
pub fn recorder() -> (Recipient<RelayMessage>, Inbox) {
    // RUST_LOG=debug shows what the pool and the relays did in a failing test.
    let _ = env_logger::builder().is_test(true).try_init();
    let (tx, rx) = mpsc::unbounded_channel();
    let addr = Recorder { tx }.start();
    (
        addr.recipient(),
        Inbox {
            rx,
            seen: Vec::new(),
            backlog: Default::default(),
        },
    )
}

impl Inbox {
    /// Waits (bounded by [`WAIT`]) for the next message satisfying `pred`; panics with the
    /// description and what was seen if it does not come.
    pub async fn expect(
        &mut self,
        what: &str,
        pred: impl Fn(&RelayMessage) -> bool,
    ) -> RelayMessage {
        self.expect_within(what, WAIT, pred)
            .await
            .unwrap_or_else(|| {
                let seen: Vec<String> = self
                    .seen
                    .iter()
                    .rev()
                    .take(20)
                    .map(|m| format!("{} {:?}", m.relay, m.kind))
                    .collect();
                panic!("timed out waiting for {what}; last messages (newest first): {seen:#?}")
            })
    }

    /// Like [`Inbox::expect`], with its own bound; `None` when it runs out.
    pub async fn expect_within(
        &mut self,
        _what: &str,
        within: Duration,
        pred: impl Fn(&RelayMessage) -> bool,
    ) -> Option<RelayMessage> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = actix::clock::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(actix::clock::Instant::now());
            match actix::clock::timeout(left, self.rx.recv()).await {
                Ok(Some(msg)) => {
                    self.seen.push(msg.clone());
                    if pred(&msg) {
                        return Some(msg);
                    }
                    self.backlog.push_back(msg);
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Waits for `Connected` from `relay` (a normalised URL string).
    pub async fn connected(&mut self, relay: &str) -> RelayMessage {
        let relay = relay.to_owned();
        self.expect(&format!("Connected from {relay}"), move |m| {
            m.relay.as_str() == relay && matches!(m.kind, MessageKind::Connected)
        })
        .await
    }

    /// Waits for `Disconnected` from `relay`.
    pub async fn disconnected(&mut self, relay: &str) -> RelayMessage {
        let relay = relay.to_owned();
        self.expect(&format!("Disconnected from {relay}"), move |m| {
            m.relay.as_str() == relay && matches!(m.kind, MessageKind::Disconnected { .. })
        })
        .await
    }

    /// Waits for the `Event` message carrying the event with this id, from any relay.
    pub async fn event(&mut self, what: &str, id: EventId) -> RelayMessage {
        self.expect(
            what,
            move |m| matches!(&m.kind, MessageKind::Event { event, .. } if event.id == id),
        )
        .await
    }

    /// Takes every message already received without waiting.
    pub fn drain(&mut self) -> Vec<RelayMessage> {
        let mut out = Vec::new();
        out.extend(self.backlog.drain(..));
        while let Ok(msg) = self.rx.try_recv() {
            self.seen.push(msg.clone());
            out.push(msg);
        }
        out
    }
}

/// Whether `m` is an `Error` from `relay`.
pub fn is_error(m: &RelayMessage) -> bool {
    matches!(m.kind, MessageKind::Error(_))
}

/// A pool with [`fast_options`] on `relays`, reporting to a fresh recorder.
pub fn pool_on(relays: Vec<String>) -> (Addr<actix_nostr::pool::RelayPool>, Inbox) {
    let (recipient, inbox) = recorder();
    let mut builder = actix_nostr::pool::RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options());
    for url in relays {
        builder = builder.relay(url);
    }
    (builder.start().expect("pool starts"), inbox)
}
