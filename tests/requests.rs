//! Await-style requests through the pool: Publish with per-relay outcomes, Fetch until
//! EOSE or timeout, Count, and NIP-42 authentication, against real relays.
#![cfg(feature = "testing")]

mod support;

use std::time::{Duration, Instant};

use actix_nostr::pool::{Count, Fetch, Publish, RelayPool, Relays, RemoveRelay, Subscribe};
use actix_nostr::protocol::{EventBuilder, Filter, Keys, Kind, Reason, Timestamp};
use actix_nostr::relay::{AuthPolicy, FetchEnd, MessageKind, NotSentReason, PublishOutcome};
use actix_nostr::testing::TestRelay;
use support::{fast_options, pool_on, recorder, WAIT};

#[actix::test]
async fn publish_reports_accepted_rejected_and_never_sent_per_relay() {
    let accepting = TestRelay::start().await.expect("relay starts");
    let blocking = TestRelay::builder()
        .event_policy(|_| Err("blocked: not on the list".into()))
        .start()
        .await
        .expect("relay starts");
    let down = TestRelay::start().await.expect("relay starts");
    down.set_refusing(true);
    let (pool, mut inbox) = pool_on(vec![accepting.url(), blocking.url(), down.url()]);
    inbox.connected(&accepting.url()).await;
    inbox.connected(&blocking.url()).await;

    let event = EventBuilder::text_note("hello").sign(&Keys::generate());
    let started = Instant::now();
    let result = pool
        .send(Publish::new(event.clone()).timeout(Duration::from_millis(800)))
        .await
        .expect("alive");
    assert!(started.elapsed() < Duration::from_secs(5));
    let outcome = |url: String| {
        result
            .relays
            .iter()
            .find(|(u, _)| u.as_str() == url)
            .map(|(_, o)| o.clone())
            .expect("outcome present")
    };
    assert!(matches!(
        outcome(accepting.url()),
        PublishOutcome::Accepted { .. }
    ));
    assert!(matches!(
        outcome(blocking.url()),
        PublishOutcome::Rejected {
            reason: Reason::Blocked,
            ..
        }
    ));
    assert_eq!(
        outcome(down.url()),
        PublishOutcome::NotSent(NotSentReason::NotConnected)
    );
    assert_eq!(result.accepted(), 1);
    assert_eq!(accepting.stored_events(), vec![event.clone()]);

    // Publishing again: the relay says duplicate, which still counts as accepted.
    let again = pool
        .send(Publish::new(event).relays(Relays::only([accepting.url()]).expect("urls")))
        .await
        .expect("alive");
    assert_eq!(again.accepted(), 1);
}

/// A publish to a single relay is answered by the relay's connection itself (no task of
/// the pool's in between): it must still resolve when that relay is removed while the event
/// waits for a connection, and a publish with nobody to ask must resolve at once.
#[actix::test]
async fn a_single_relay_publish_resolves_when_the_relay_is_removed_meanwhile() {
    let down = TestRelay::start().await.expect("relay starts");
    down.set_refusing(true);
    let (pool, _inbox) = pool_on(vec![down.url()]);
    let event = EventBuilder::text_note("never sent").sign(&Keys::generate());
    // Queued by the pool before the removal (a mailbox keeps its order); a 30 s timeout
    // that the test would notice.
    let publish = pool.send(Publish::new(event.clone()).timeout(Duration::from_secs(30)));
    pool.send(RemoveRelay::new(down.url()))
        .await
        .expect("alive")
        .expect("removed");
    let started = Instant::now();
    let result = actix::clock::timeout(WAIT, publish)
        .await
        .expect("resolved without waiting for its timeout")
        .expect("the pool answered");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(result.event_id, event.id);
    assert_eq!(
        result.relays.values().collect::<Vec<_>>(),
        [&PublishOutcome::NotSent(NotSentReason::Removed)]
    );

    // No relay left to ask: answered at once, with why.
    let result = pool
        .send(Publish::new(event).relays(Relays::only([down.url()]).expect("urls")))
        .await
        .expect("alive");
    assert_eq!(
        result.relays.values().collect::<Vec<_>>(),
        [&PublishOutcome::NotSent(NotSentReason::NotInPool)]
    );
}

/// `do_send(Publish)` has no caller to answer: the single-relay path still publishes, and
/// the connection's `OK` handler answering nobody is harmless (the user still gets the `OK`
/// as a `RelayMessage`).
#[actix::test]
async fn a_fire_and_forget_publish_still_reaches_the_relay() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    let event = EventBuilder::text_note("nobody waits").sign(&Keys::generate());
    pool.do_send(Publish::new(event.clone()));
    relay
        .wait_until(|r| r.stored_events().contains(&event), WAIT)
        .await
        .expect("stored by the relay");
    let id = event.id;
    inbox
        .expect("the OK as a RelayMessage", move |m| {
            matches!(&m.kind, MessageKind::Ok { event_id, accepted: true, .. } if *event_id == id)
        })
        .await;
}

#[actix::test]
async fn publish_without_answer_is_told_apart_from_never_sent() {
    let relay = TestRelay::builder()
        .never_ok(true)
        .start()
        .await
        .expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    let event = EventBuilder::text_note("into the void").sign(&Keys::generate());
    let result = pool
        .send(Publish::new(event).timeout(Duration::from_millis(300)))
        .await
        .expect("alive");
    assert_eq!(
        result.relays.values().next(),
        Some(&PublishOutcome::NoAnswer)
    );
}

#[actix::test]
async fn fetch_returns_at_the_timeout_when_one_relay_never_sends_eose() {
    let keys = Keys::generate();
    let note = |text: &str, at: u64| {
        EventBuilder::text_note(text)
            .created_at(Timestamp::from_secs(at))
            .sign(&keys)
    };
    let a = TestRelay::start().await.expect("relay starts");
    let silent = TestRelay::builder()
        .never_eose(true)
        .start()
        .await
        .expect("relay starts");
    let c = TestRelay::start().await.expect("relay starts");
    a.publish(note("a1", 100));
    a.publish(note("shared", 300));
    silent.publish(note("from the silent one", 200));
    c.publish(note("shared", 300));
    c.publish(note("c1", 400));
    let (pool, mut inbox) = pool_on(vec![a.url(), silent.url(), c.url()]);
    for r in [&a, &silent, &c] {
        inbox.connected(&r.url()).await;
    }
    let timeout = Duration::from_millis(700);
    let started = Instant::now();
    let result = pool
        .send(Fetch::new(vec![Filter::new().kind(Kind::TEXT_NOTE)]).timeout(timeout))
        .await
        .expect("alive");
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "{took:?}"
    );
    let contents: Vec<&str> = result.events.iter().map(|e| e.content.as_str()).collect();
    assert_eq!(
        contents,
        ["c1", "shared", "from the silent one", "a1"],
        "newest first, once"
    );
    let end = |url: String| {
        result
            .relays
            .iter()
            .find(|(u, _)| u.as_str() == url)
            .map(|(_, e)| e.clone())
    };
    assert_eq!(end(a.url()), Some(FetchEnd::Eose));
    assert_eq!(end(c.url()), Some(FetchEnd::Eose));
    assert_eq!(end(silent.url()), Some(FetchEnd::TimedOut));
    silent
        .wait_until(|r| r.open_subscriptions().is_empty(), WAIT)
        .await
        .expect("the fetch is closed on the silent relay too");
}

#[actix::test]
async fn fetch_is_quick_when_every_relay_answers() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    for n in 0..20 {
        relay.publish(
            EventBuilder::text_note(format!("n{n}"))
                .created_at(Timestamp::from_secs(1_000 + n))
                .sign(&keys),
        );
    }
    let pool = RelayPool::builder()
        .default_options(fast_options())
        .relay(relay.url())
        .start()
        .expect("pool starts");
    let result = pool
        .send(Fetch::new(vec![Filter::new().limit(5)]).timeout(Duration::from_secs(30)))
        .await
        .expect("alive");
    assert_eq!(result.events.len(), 5);
    assert_eq!(result.events[0].content, "n19");
}

#[actix::test]
async fn count_asks_each_relay() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    for n in 0..3 {
        relay.publish(EventBuilder::text_note(format!("c{n}")).sign(&keys));
    }
    relay.publish(EventBuilder::new(Kind::REACTION, "+").sign(&keys));
    let pool = RelayPool::builder()
        .default_options(fast_options())
        .relay(relay.url())
        .start()
        .expect("pool starts");
    let counts = pool
        .send(Count::new(vec![Filter::new().kind(Kind::TEXT_NOTE)]))
        .await
        .expect("alive");
    let (_, answer) = counts.into_iter().next().expect("one relay");
    assert_eq!(answer.expect("a count").count, 3);
}

#[actix::test]
async fn auth_required_relay_works_after_automatic_authentication() {
    let relay = TestRelay::builder()
        .auth_required(true)
        .start()
        .await
        .expect("relay starts");
    let keys = Keys::generate();
    relay.publish(EventBuilder::text_note("members only").sign(&keys));
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .keys(keys.clone())
        .default_options(fast_options())
        .relay(relay.url())
        .start()
        .expect("pool starts");
    pool.send(Subscribe::new(vec![Filter::new()]).id("s"))
        .await
        .expect("alive")
        .expect("subscribed");
    inbox
        .expect("the stored event", |m| {
            matches!(&m.kind, MessageKind::Event { event, .. } if event.content == "members only")
        })
        .await;
    let result = pool
        .send(Publish::new(EventBuilder::text_note("mine").sign(&keys)))
        .await
        .expect("alive");
    assert_eq!(result.accepted(), 1, "{:?}", result.relays);
    let conn = relay.connections();
    assert_eq!(conn[0].authenticated, Some(keys.public_key()));
}

#[actix::test]
async fn lazy_auth_sends_nothing_before_a_refusal() {
    let relay = TestRelay::builder()
        .auth_required(true)
        .start()
        .await
        .expect("relay starts");
    let keys = Keys::generate();
    relay.publish(EventBuilder::text_note("members only").sign(&keys));
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .keys(keys.clone())
        .default_options(fast_options().auth(AuthPolicy::Lazy))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox
        .expect("the challenge", |m| {
            matches!(m.kind, MessageKind::Auth { .. })
        })
        .await;
    pool.send(Subscribe::new(vec![Filter::new()]).id("lazy"))
        .await
        .expect("alive")
        .expect("subscribed");
    inbox
        .expect("the stored event", |m| {
            matches!(&m.kind, MessageKind::Event { event, .. } if event.content == "members only")
        })
        .await;
    let verbs: Vec<&'static str> = relay.received().iter().filter_map(|f| f.verb()).collect();
    let first_auth = verbs
        .iter()
        .position(|v| *v == "AUTH")
        .expect("an AUTH was sent");
    let first_req = verbs
        .iter()
        .position(|v| *v == "REQ")
        .expect("a REQ was sent");
    assert!(first_req < first_auth, "AUTH before any refusal: {verbs:?}");
    assert_eq!(
        verbs.iter().filter(|v| **v == "REQ").count(),
        2,
        "{verbs:?}"
    );
}

#[actix::test]
async fn without_keys_the_challenge_reaches_the_user() {
    let relay = TestRelay::builder()
        .auth_required(true)
        .start()
        .await
        .expect("relay starts");
    let (recipient, mut inbox) = recorder();
    let _pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options())
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox
        .expect("the challenge", |m| {
            matches!(m.kind, MessageKind::Auth { .. })
        })
        .await;
    assert!(relay.received().iter().all(|f| f.verb() != Some("AUTH")));
}

#[actix::test]
async fn nip11_max_subscriptions_queues_requests_and_serves_them_all() {
    use actix_nostr::pool::ListRelays;
    let relay = TestRelay::builder()
        .max_subscriptions(2)
        .start()
        .await
        .expect("relay starts");
    let keys = Keys::generate();
    relay.publish(EventBuilder::text_note("stored").sign(&keys));
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options().fetch_info(true))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox.connected(&relay.url()).await;
    let info = pool.send(ListRelays).await.expect("alive")[0].info.clone();
    assert_eq!(
        info.and_then(|i| i.limitation.max_subscriptions),
        Some(2),
        "the NIP-11 document was read"
    );
    for n in 0..5 {
        pool.send(
            Subscribe::new(vec![Filter::new()])
                .id(format!("s{n}"))
                .close_on_eose(true),
        )
        .await
        .expect("alive")
        .expect("subscribed");
    }
    for n in 0..5 {
        let id = format!("s{n}");
        inbox
            .expect(
                &format!("EOSE {id}"),
                move |m| matches!(&m.kind, MessageKind::Eose(s) if s.as_str() == id),
            )
            .await;
    }
    let closed: Vec<_> = inbox
        .seen
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Closed { .. }))
        .collect();
    assert!(closed.is_empty(), "the relay refused some: {closed:?}");
    let events = inbox
        .seen
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Event { .. }))
        .count();
    assert_eq!(events, 5, "each subscription got the stored event");
}

#[actix::test]
async fn nip11_max_message_length_refuses_to_send_larger_events() {
    let relay = TestRelay::builder()
        .max_message_size(4096)
        .start()
        .await
        .expect("relay starts");
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options().fetch_info(true))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox.connected(&relay.url()).await;
    let keys = Keys::generate();
    let big = EventBuilder::text_note("y".repeat(8000)).sign(&keys);
    let result = pool.send(Publish::new(big)).await.expect("alive");
    assert_eq!(
        result.relays.values().next(),
        Some(&PublishOutcome::NotSent(NotSentReason::TooLarge))
    );
    let small = EventBuilder::text_note("fits").sign(&keys);
    let result = pool.send(Publish::new(small)).await.expect("alive");
    assert_eq!(result.accepted(), 1);
    assert_eq!(
        relay.connections_total(),
        1,
        "the relay never had to close on us"
    );
}

#[actix::test]
async fn lazy_auth_retries_a_refused_publish_once_after_authenticating() {
    let relay = TestRelay::builder()
        .auth_required(true)
        .start()
        .await
        .expect("relay starts");
    let keys = Keys::generate();
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .keys(keys.clone())
        .default_options(fast_options().auth(AuthPolicy::Lazy))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox
        .expect("the challenge", |m| {
            matches!(m.kind, MessageKind::Auth { .. })
        })
        .await;
    let event = EventBuilder::text_note("let me in").sign(&keys);
    let result = pool.send(Publish::new(event.clone())).await.expect("alive");
    assert_eq!(result.accepted(), 1, "{:?}", result.relays);
    let verbs: Vec<&'static str> = relay.received().iter().filter_map(|f| f.verb()).collect();
    assert_eq!(
        verbs,
        ["EVENT", "AUTH", "EVENT"],
        "refused, authenticated, retried"
    );
    assert_eq!(relay.stored_events(), vec![event]);
}

#[actix::test]
async fn write_disabled_relays_are_skipped_by_publish() {
    let writable = TestRelay::start().await.expect("relay starts");
    let read_only = TestRelay::start().await.expect("relay starts");
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options())
        .relay(writable.url())
        .relay_with(read_only.url(), fast_options().write(false))
        .start()
        .expect("pool starts");
    inbox.connected(&writable.url()).await;
    inbox.connected(&read_only.url()).await;
    let event = EventBuilder::text_note("only where writable").sign(&Keys::generate());
    let all = pool.send(Publish::new(event.clone())).await.expect("alive");
    assert_eq!(
        all.relays.len(),
        1,
        "read-only relay skipped: {:?}",
        all.relays
    );
    let explicit = pool
        .send(Publish::new(event).relays(Relays::only([read_only.url()]).expect("urls")))
        .await
        .expect("alive");
    assert_eq!(
        explicit.relays.values().next(),
        Some(&PublishOutcome::NotSent(NotSentReason::WriteDisabled))
    );
    assert!(read_only.stored_events().is_empty());
}
