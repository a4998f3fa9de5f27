//! Subscriptions through the pool against real relays: gap-free resubscription, verified
//! and de-duplicated delivery, forged events, unsubscribe, big events, slow consumers.
#![cfg(feature = "testing")]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_nostr::pool::{AddRelay, RelayPool, Stats, Subscribe, Unsubscribe};
use actix_nostr::protocol::{
    ClientMessage, Event, EventBuilder, Filter, Keys, Kind, Signature, SubscriptionId, Timestamp,
};
use actix_nostr::relay::{MessageKind, RelayError, RelayMessage};
use actix_nostr::testing::TestRelay;
use support::{fast_options, pool_on, recorder, Inbox, WAIT};

fn note(keys: &Keys, text: &str, at: u64) -> Event {
    EventBuilder::text_note(text)
        .created_at(Timestamp::from_secs(at))
        .sign(keys)
}

fn events_of(inbox: &Inbox, sub: &str) -> Vec<Event> {
    inbox
        .seen
        .iter()
        .filter_map(|m| match &m.kind {
            MessageKind::Event {
                subscription_id,
                event,
            } if subscription_id.as_str() == sub => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

async fn eose(inbox: &mut Inbox, relay: &str, sub: &str) {
    let (relay, sub) = (relay.to_owned(), sub.to_owned());
    inbox
        .expect(&format!("EOSE {sub} from {relay}"), move |m| {
            m.relay.as_str() == relay
                && matches!(&m.kind, MessageKind::Eose(id) if id.as_str() == sub)
        })
        .await;
}

async fn event_with(inbox: &mut Inbox, content: &str) -> RelayMessage {
    let content = content.to_owned();
    inbox
        .expect(&format!("event {content:?}"), move |m| {
            matches!(&m.kind, MessageKind::Event { event, .. } if event.content == content)
        })
        .await
}

#[actix::test]
async fn events_published_during_an_outage_arrive_once_after_reconnect() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    for (n, age) in [300, 200, 100].into_iter().enumerate() {
        relay.publish(note(&keys, &format!("before {n}"), now - age));
    }
    let (recipient, mut inbox) = recorder();
    let overlap = Duration::from_secs(10);
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options().resubscribe_overlap(overlap))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    let filter = Filter::new().kind(Kind::TEXT_NOTE);
    pool.send(Subscribe::new(vec![filter.clone()]).id("feed"))
        .await
        .expect("alive")
        .expect("subscribed");
    eose(&mut inbox, &relay.url(), "feed").await;
    assert_eq!(events_of(&inbox, "feed").len(), 3);

    // Outage: the socket dies and the relay refuses us while two notes are published.
    relay.set_refusing(true);
    let cursor = relay.received_count();
    relay.drop_connections();
    inbox.disconnected(&relay.url()).await;
    relay.publish(note(&keys, "during 0", now - 50));
    relay.publish(note(&keys, "during 1", now - 40));
    relay.set_refusing(false);

    inbox.connected(&relay.url()).await;
    let req = relay
        .wait_for_frame_after(cursor, |f| f.is_req("feed"), WAIT)
        .await
        .expect("REQ re-sent on reconnect");
    match req.message {
        Ok(ClientMessage::Req { filters, .. }) => {
            assert_eq!(filters.len(), 1);
            assert_eq!(filters[0].since, Some(Timestamp::from_secs(now - 100 - 10)));
            assert_eq!(filters[0].kinds, filter.kinds, "the user's filter is kept");
        }
        other => panic!("unexpected {other:?}"),
    }
    eose(&mut inbox, &relay.url(), "feed").await;
    let got = events_of(&inbox, "feed");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in &got {
        *counts.entry(e.content.clone()).or_default() += 1;
    }
    assert_eq!(got.len(), 5, "{counts:?}");
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
    assert_eq!(counts.get("during 0"), Some(&1));
    assert_eq!(counts.get("during 1"), Some(&1));
    // The overlap re-sent one old event; the de-dup absorbed it.
    let stats = pool.send(Stats).await.expect("alive");
    assert_eq!(stats.total.events_duplicate, 1, "{:?}", stats.total);
}

#[actix::test]
async fn the_same_event_from_three_relays_is_verified_and_delivered_once() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    let event = note(&keys, "everywhere", Timestamp::now().as_secs());
    let urls: Vec<String> = ["/1", "/2", "/3"]
        .iter()
        .map(|p| relay.url_for(p))
        .collect();
    for p in ["/1", "/2", "/3"] {
        relay.publish_at(p, event.clone());
    }
    let (recipient, mut inbox) = recorder();
    // One thread, so "verified once" is exact. With connections on several arbiters, two
    // relays delivering the same event in the same instant may both verify it (the memory
    // is checked before, and written after, the signature check); delivery stays once.
    let mut builder = RelayPool::builder()
        .recipient(recipient)
        .arbiters(0)
        .default_options(fast_options());
    for u in &urls {
        builder = builder.relay(u);
    }
    let pool = builder.start().expect("pool starts");
    pool.send(Subscribe::new(vec![Filter::new()]).id("s"))
        .await
        .expect("alive")
        .expect("subscribed");
    for u in &urls {
        eose(&mut inbox, u, "s").await;
    }
    assert_eq!(events_of(&inbox, "s"), vec![event]);
    let stats = pool.send(Stats).await.expect("alive");
    assert_eq!(stats.total.events_received, 3);
    assert_eq!(stats.total.verifications, 1, "verified once");
    assert_eq!(stats.total.events_delivered, 1);
    assert_eq!(stats.total.events_duplicate, 2);
    assert_eq!(stats.dedup.verify_hits, 2);
}

#[actix::test]
async fn forged_events_are_never_delivered() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    pool.send(Subscribe::new(vec![Filter::new()]).id("s"))
        .await
        .expect("alive")
        .expect("subscribed");
    eose(&mut inbox, &relay.url(), "s").await;

    let good = note(&keys, "genuine", Timestamp::now().as_secs());
    let mut bad_sig = good.clone();
    bad_sig.content = "genuine".into();
    let mut bytes = *bad_sig.sig.as_bytes();
    bytes[63] ^= 1;
    bad_sig.sig = Signature::from_bytes(bytes);
    let mut bad_id = good.clone();
    bad_id.content = "tampered".into();
    let mut other_id = note(&keys, "another", 1);
    other_id.id = good.id;

    for forged in [&bad_sig, &bad_id, &other_id] {
        assert_eq!(relay.send_forged_event(forged), 1);
    }
    for n in 0..3 {
        inbox
            .expect(&format!("forged event error {n}"), |m| {
                matches!(m.kind, MessageKind::Error(RelayError::InvalidEvent { .. }))
            })
            .await;
    }
    relay.publish(good.clone());
    event_with(&mut inbox, "genuine").await;
    let delivered = events_of(&inbox, "s");
    assert_eq!(delivered, vec![good]);
    let stats = pool.send(Stats).await.expect("alive");
    assert_eq!(stats.total.events_invalid, 3);
}

#[actix::test]
async fn unsubscribe_closes_everywhere_and_relays_added_later_get_live_subscriptions() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (a, b) = (relay.url_for("/a"), relay.url_for("/b"));
    let (pool, mut inbox) = pool_on(vec![a.clone()]);
    let id = pool
        .send(Subscribe::new(vec![Filter::new().kind(Kind::TEXT_NOTE)]))
        .await
        .expect("alive")
        .expect("subscribed");
    eose(&mut inbox, &a, id.as_str()).await;
    pool.send(AddRelay::new(&b))
        .await
        .expect("alive")
        .expect("added");
    eose(&mut inbox, &b, id.as_str()).await;
    assert_eq!(relay.open_subscriptions().len(), 2);

    pool.send(Unsubscribe(id.clone()))
        .await
        .expect("alive")
        .expect("unsubscribed");
    relay
        .wait_until(|r| r.open_subscriptions().is_empty(), WAIT)
        .await
        .expect("CLOSE reached both relays");
    let again = pool.send(Unsubscribe(id)).await.expect("alive");
    assert!(again.is_err());
}

#[actix::test]
async fn a_one_mebibyte_event_is_received_whole() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    let big = EventBuilder::text_note("x".repeat(1 << 20)).sign(&keys);
    relay.publish(big.clone());
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    pool.send(Subscribe::new(vec![Filter::new()]).id("big"))
        .await
        .expect("alive")
        .expect("subscribed");
    eose(&mut inbox, &relay.url(), "big").await;
    let got = events_of(&inbox, "big");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content.len(), 1 << 20);
    assert_eq!(got[0], big);
}

/// A consumer on its own thread that is slow on purpose (busy for `cost` per event). It
/// counts the events that arrive out of the relay's order (newest first, one per second).
struct SlowConsumer {
    cost: Duration,
    consumed: Arc<AtomicU64>,
    out_of_order: Arc<AtomicU64>,
    last_created_at: Option<Timestamp>,
}

impl Actor for SlowConsumer {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for SlowConsumer {
    type Result = ();
    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        if let MessageKind::Event { event, .. } = msg.kind {
            if self
                .last_created_at
                .is_some_and(|last| event.created_at >= last)
            {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            self.last_created_at = Some(event.created_at);
            let until = std::time::Instant::now() + self.cost;
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            self.consumed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[actix::test]
async fn a_slow_consumer_under_a_flood_keeps_memory_bounded_and_loses_nothing() {
    slow_consumer_under_flood(Some(1)).await;
}

#[actix::test]
async fn a_slow_consumer_of_same_thread_connections_is_bounded_too() {
    slow_consumer_under_flood(Some(0)).await;
}

/// Floods a slow consumer on its own thread; `arbiters` as given to the pool (`Some(1)`:
/// the connection on a dedicated arbiter, batches across; `Some(0)`: connections on the
/// pool's arbiter, one message per event; `None`: the default).
async fn slow_consumer_under_flood(arbiters: Option<usize>) {
    const N: u64 = 3_000;
    const WINDOW: usize = 32;
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    relay.preload((0..N).map(|n| note(&keys, &format!("flood {n}"), 1_700_000_000 + n)));

    let consumed = Arc::new(AtomicU64::new(0));
    let out_of_order = Arc::new(AtomicU64::new(0));
    let arbiter = Arbiter::new();
    let (counter, disorder) = (consumed.clone(), out_of_order.clone());
    let consumer = SlowConsumer::start_in_arbiter(&arbiter.handle(), move |_| SlowConsumer {
        cost: Duration::from_micros(200),
        consumed: counter,
        out_of_order: disorder,
        last_created_at: None,
    });
    let mut builder = RelayPool::builder()
        .recipient(consumer.recipient())
        .default_options(fast_options().delivery_window(WINDOW))
        .relay(relay.url());
    if let Some(n) = arbiters {
        builder = builder.arbiters(n);
    }
    let pool = builder.start().expect("pool starts");
    pool.send(Subscribe::new(vec![Filter::new()]).id("flood"))
        .await
        .expect("alive")
        .expect("subscribed");

    // Sample the gap between what the connection handed over and what the consumer has
    // handled: that gap is what sits in memory. Each Stats round trip paces the loop.
    let mut max_gap = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats = pool.send(Stats).await.expect("alive");
        let done = consumed.load(Ordering::Relaxed);
        max_gap = max_gap.max(stats.total.events_delivered.saturating_sub(done));
        if done == N {
            // Read again: the snapshot above may predate the last deliveries.
            let stats = pool.send(Stats).await.expect("alive");
            assert_eq!(
                stats.total.events_delivered, N,
                "nothing lost, nothing extra"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "consumer got {done} of {N} events"
        );
        actix::clock::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        max_gap <= 3 * WINDOW as u64 + 2,
        "up to {max_gap} events were queued for the slow consumer (window {WINDOW})"
    );
    // The consumer's mailbox was over its capacity all along: the window's last message
    // (sent with `send`) must not have been overtaken by the next window's.
    assert_eq!(
        out_of_order.load(Ordering::Relaxed),
        0,
        "events arrived out of the relay's order"
    );
    arbiter.stop();
}

#[actix::test]
async fn subscriptions_can_close_on_eose() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    relay.publish(note(&keys, "stored", 1_700_000_000));
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    pool.send(
        Subscribe::new(vec![Filter::new()])
            .id(SubscriptionId::new("once"))
            .close_on_eose(true),
    )
    .await
    .expect("alive")
    .expect("subscribed");
    eose(&mut inbox, &relay.url(), "once").await;
    relay
        .wait_for_close("once", WAIT)
        .await
        .expect("CLOSE after EOSE");
    assert_eq!(events_of(&inbox, "once").len(), 1);
}
