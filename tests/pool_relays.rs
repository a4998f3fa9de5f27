//! The relay pool against a real relay (`TestRelay` on 127.0.0.1): adding, listing and
//! removing relays, sending, queueing, reconnecting, keep-alive, bad frames, supervision.
#![cfg(feature = "testing")]

mod support;

use std::time::Duration;

use actix_nostr::pool::{
    AddOutcome, AddRelay, Broadcast, InjectActorFault, ListRelays, PoolError, Reconnect, RelayPool,
    RelayPoolBuilder, RemoveRelay, SendTo, Stats,
};
use actix_nostr::protocol::{ClientMessage, Filter, Kind, SubscriptionId};
use actix_nostr::relay::{ActorFault, DisconnectReason, MessageKind, RelayError, RelayState};
use actix_nostr::testing::TestRelay;
use support::{fast_options, pool_on, recorder, WAIT};

fn req(id: &str) -> ClientMessage {
    ClientMessage::req(
        SubscriptionId::new(id),
        vec![Filter::new().kind(Kind::TEXT_NOTE)],
    )
}

#[actix::test]
async fn add_list_and_remove_a_relay() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options())
        .start()
        .expect("pool starts");

    let added = pool
        .send(AddRelay::new(relay.url()))
        .await
        .expect("pool alive");
    assert!(matches!(added, Ok(AddOutcome::Added(ref u)) if u.as_str() == relay.url()));
    inbox.connected(&relay.url()).await;

    let list = pool.send(ListRelays).await.expect("pool alive");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, RelayState::Connected);
    assert_eq!(list[0].stats.connects, 1);

    pool.send(RemoveRelay::new(relay.url()))
        .await
        .expect("pool alive")
        .expect("removed");
    let gone = inbox.disconnected(&relay.url()).await;
    assert!(matches!(
        gone.kind,
        MessageKind::Disconnected {
            reason: DisconnectReason::Removed,
            next_retry: None
        }
    ));
    assert!(pool.send(ListRelays).await.expect("pool alive").is_empty());
    relay
        .wait_for_connections(0, WAIT)
        .await
        .expect("the relay sees the socket close");
}

#[actix::test]
async fn duplicate_and_invalid_urls_are_told_apart() {
    let relay = TestRelay::start().await.expect("relay starts");
    let pool = RelayPool::builder()
        .default_options(fast_options())
        .start()
        .expect("pool starts");
    let url = relay.url();
    pool.send(AddRelay::new(&url))
        .await
        .expect("alive")
        .expect("added");
    // Same relay, spelled differently.
    let again = format!("{}/", url.to_uppercase().replace("WS://", "ws://"));
    let outcome = pool.send(AddRelay::new(again)).await.expect("alive");
    assert!(
        matches!(outcome, Ok(AddOutcome::AlreadyPresent(_))),
        "{outcome:?}"
    );
    for bad in ["https://relay.example.com", "not a url", "ws://"] {
        let outcome = pool.send(AddRelay::new(bad)).await.expect("alive");
        assert!(
            matches!(outcome, Err(PoolError::InvalidUrl(_))),
            "{bad}: {outcome:?}"
        );
    }
    let unknown = pool
        .send(RemoveRelay::new("ws://127.0.0.1:1"))
        .await
        .expect("alive");
    assert!(matches!(unknown, Err(PoolError::UnknownRelay(_))));
    assert_eq!(pool.send(ListRelays).await.expect("alive").len(), 1);
}

#[actix::test]
async fn send_and_broadcast_reach_the_relays() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (a, b) = (relay.url_for("/a"), relay.url_for("/b"));
    let (pool, mut inbox) = pool_on(vec![a.clone(), b.clone()]);
    inbox.connected(&a).await;
    inbox.connected(&b).await;

    pool.send(SendTo::new(&a, req("only-a")))
        .await
        .expect("alive")
        .expect("sent");
    let frame = relay
        .wait_for_req("only-a", WAIT)
        .await
        .expect("REQ arrives");
    assert_eq!(frame.path, "/a");

    let outcomes = pool
        .send(Broadcast::new(req("everyone")))
        .await
        .expect("alive");
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()), "{outcomes:?}");
    relay
        .wait_until(
            |r| r.received().iter().filter(|f| f.is_req("everyone")).count() == 2,
            WAIT,
        )
        .await
        .expect("both relays get the broadcast");
    let paths: Vec<String> = relay
        .received()
        .into_iter()
        .filter(|f| f.is_req("everyone"))
        .map(|f| f.path)
        .collect();
    assert!(paths.contains(&"/a".to_owned()) && paths.contains(&"/b".to_owned()));
}

#[actix::test]
async fn messages_queue_while_connecting_and_flush_in_order() {
    let relay = TestRelay::start().await.expect("relay starts");
    relay.set_refusing(true);
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.disconnected(&relay.url()).await;
    for n in 0..3 {
        pool.send(SendTo::new(relay.url(), req(&format!("q{n}"))))
            .await
            .expect("alive")
            .expect("queued");
    }
    let list = pool.send(ListRelays).await.expect("alive");
    assert_eq!(list[0].stats.queued, 3);

    relay.set_refusing(false);
    inbox.connected(&relay.url()).await;
    relay
        .wait_for_req("q2", WAIT)
        .await
        .expect("last queued REQ arrives");
    let order: Vec<String> = relay
        .received()
        .into_iter()
        .filter_map(|f| f.subscription_id().map(|s| s.to_string()))
        .collect();
    assert_eq!(order, ["q0", "q1", "q2"]);
}

#[actix::test]
async fn a_full_queue_is_an_error_not_a_silent_drop() {
    let relay = TestRelay::start().await.expect("relay starts");
    relay.set_refusing(true);
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options().queue_capacity(2))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox.disconnected(&relay.url()).await;
    for n in 0..2 {
        pool.send(SendTo::new(relay.url(), req(&format!("q{n}"))))
            .await
            .expect("alive")
            .expect("queued");
    }
    let third = pool
        .send(SendTo::new(relay.url(), req("q2")))
        .await
        .expect("alive");
    assert!(
        matches!(
            third,
            Err(PoolError::Relay {
                error: RelayError::QueueFull { capacity: 2 },
                ..
            })
        ),
        "{third:?}"
    );
}

#[actix::test]
async fn a_dropped_connection_reconnects_on_the_backoff_schedule() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;

    assert_eq!(relay.drop_connections(), 1);
    let lost = inbox.disconnected(&relay.url()).await;
    match lost.kind {
        MessageKind::Disconnected { reason, next_retry } => {
            assert!(
                matches!(
                    reason,
                    DisconnectReason::ConnectionLost | DisconnectReason::Error(_)
                ),
                "{reason:?}"
            );
            // First entry of the backoff list, no jitter.
            assert_eq!(next_retry, Some(Duration::from_millis(50)));
        }
        other => panic!("unexpected {other:?}"),
    }
    inbox.connected(&relay.url()).await;
    let stats = pool.send(Stats).await.expect("alive");
    assert_eq!(stats.total.connects, 2);
    assert_eq!(stats.total.reconnects, 1);
}

#[actix::test]
async fn a_relay_restarted_on_the_same_port_is_reconnected() {
    let mut relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    relay.restart(true).await.expect("relay restarts");
    inbox.disconnected(&relay.url()).await;
    inbox.connected(&relay.url()).await;
    pool.send(SendTo::new(relay.url(), req("after-restart")))
        .await
        .expect("alive")
        .expect("sent");
    relay
        .wait_for_req("after-restart", WAIT)
        .await
        .expect("works after restart");
}

#[actix::test]
async fn a_silent_relay_is_detected_by_ping_timeout_and_replaced() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (recipient, mut inbox) = recorder();
    let options = fast_options()
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(200));
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(options)
        .relay(relay.url())
        .start()
        .expect("pool starts");
    inbox.connected(&relay.url()).await;
    relay.set_silent(true);
    let started = std::time::Instant::now();
    let lost = inbox.disconnected(&relay.url()).await;
    assert!(
        matches!(
            lost.kind,
            MessageKind::Disconnected {
                reason: DisconnectReason::PingTimeout,
                ..
            }
        ),
        "{:?}",
        lost.kind
    );
    // Detected within interval + timeout (plus scheduling slack on a busy machine).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    relay.set_silent(false);
    inbox.connected(&relay.url()).await;
    let stats = pool.send(Stats).await.expect("alive");
    assert!(stats.total.ping_rtt.is_some() || stats.total.connects >= 2);
}

#[actix::test]
async fn refused_connections_are_retried_with_growing_delays() {
    let relay = TestRelay::start().await.expect("relay starts");
    relay.set_refusing(true);
    let (recipient, mut inbox) = recorder();
    let delays = vec![
        Duration::from_millis(20),
        Duration::from_millis(40),
        Duration::from_millis(80),
        Duration::from_millis(160),
    ];
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options().backoff(delays.clone()))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    let first = inbox.disconnected(&relay.url()).await;
    let mut seen = vec![match first.kind {
        MessageKind::Disconnected {
            next_retry: Some(d),
            ..
        } => d,
        other => panic!("unexpected {other:?}"),
    }];
    while seen.len() < 5 {
        let msg = inbox
            .expect("a failed retry", |m| {
                matches!(m.kind, MessageKind::Error(RelayError::ConnectFailed { .. }))
            })
            .await;
        if let MessageKind::Error(RelayError::ConnectFailed { next_retry, .. }) = msg.kind {
            seen.push(next_retry);
        }
    }
    // The list in order, then the last value repeating.
    assert_eq!(
        seen,
        [delays[0], delays[1], delays[2], delays[3], delays[3]]
    );
    assert!(relay.refused_total() >= 4);
    let list = pool.send(ListRelays).await.expect("alive");
    assert!(matches!(
        list[0].state,
        RelayState::WaitingToRetry { .. } | RelayState::Connecting { .. }
    ));
}

#[actix::test]
async fn garbage_and_binary_frames_are_reported_and_the_connection_stays() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    relay.send_raw_text("this is not json");
    relay.send_raw_text(r#"["NOPE", 1]"#);
    relay.send_raw_text(r#"{"an":"object"}"#);
    relay.send_raw_binary(&[0, 1, 2, 3]);
    for what in ["broken JSON", "unknown type", "wrong shape"] {
        inbox
            .expect(what, |m| {
                matches!(m.kind, MessageKind::Error(RelayError::InvalidFrame { .. }))
            })
            .await;
    }
    inbox
        .expect("binary frame", |m| {
            matches!(
                m.kind,
                MessageKind::Error(RelayError::BinaryFrame { len: 4 })
            )
        })
        .await;
    pool.send(SendTo::new(relay.url(), req("still-up")))
        .await
        .expect("alive")
        .expect("sent");
    relay
        .wait_for_req("still-up", WAIT)
        .await
        .expect("connection still works");
    assert_eq!(relay.connections_total(), 1, "no reconnect happened");
    let stats = pool.send(Stats).await.expect("alive");
    assert!(stats.total.errors >= 4, "{:?}", stats.total);
}

#[actix::test]
async fn a_relay_removed_while_waiting_to_retry_never_reconnects() {
    let relay = TestRelay::start().await.expect("relay starts");
    relay.set_refusing(true);
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.disconnected(&relay.url()).await;
    pool.send(RemoveRelay::new(relay.url()))
        .await
        .expect("alive")
        .expect("removed");
    inbox
        .expect("Disconnected(removed)", |m| {
            matches!(
                m.kind,
                MessageKind::Disconnected {
                    reason: DisconnectReason::Removed,
                    next_retry: None
                }
            )
        })
        .await;
    relay.set_refusing(false);
    // A negative check: with 50-100 ms retries, a leaked timer would connect well within
    // this bound.
    let reconnected = relay
        .wait_for_connections_total(1, Duration::from_millis(800))
        .await;
    assert!(reconnected.is_err(), "a removed relay reconnected");
}

#[actix::test]
async fn fifty_relays_in_one_pool() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options())
        .start()
        .expect("pool starts");
    for n in 0..50 {
        pool.send(AddRelay::new(relay.url_for(&format!("/r{n}"))))
            .await
            .expect("alive")
            .expect("added");
    }
    let mut connected = std::collections::HashSet::new();
    while connected.len() < 50 {
        let m = inbox
            .expect("Connected", |m| matches!(m.kind, MessageKind::Connected))
            .await;
        connected.insert(m.relay);
    }
    relay
        .wait_for_connections(50, WAIT)
        .await
        .expect("50 sockets");
    let outcomes = pool
        .send(Broadcast::new(req("all-50")))
        .await
        .expect("alive");
    assert_eq!(outcomes.len(), 50);
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()));
    relay
        .wait_until(
            |r| r.received().iter().filter(|f| f.is_req("all-50")).count() == 50,
            WAIT,
        )
        .await
        .expect("every relay got the REQ");
}

#[actix::test]
async fn a_connection_actor_that_stops_or_panics_is_restarted() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;

    // Stop: the supervisor restarts the actor in place and it reconnects.
    pool.send(InjectActorFault {
        relay: relay.url(),
        fault: ActorFault::Stop,
    })
    .await
    .expect("alive")
    .expect("injected");
    inbox.connected(&relay.url()).await;
    pool.send(SendTo::new(relay.url(), req("after-stop")))
        .await
        .expect("alive")
        .expect("sent");
    relay
        .wait_for_req("after-stop", WAIT)
        .await
        .expect("works after stop");

    // Panic: the task dies; the pool starts a replacement and says so.
    pool.send(InjectActorFault {
        relay: relay.url(),
        fault: ActorFault::Panic,
    })
    .await
    .expect("alive")
    .expect("injected");
    inbox
        .expect("ActorRestarted", |m| {
            matches!(m.kind, MessageKind::Error(RelayError::ActorRestarted))
        })
        .await;
    inbox.connected(&relay.url()).await;
    pool.send(SendTo::new(relay.url(), req("after-panic")))
        .await
        .expect("alive")
        .expect("sent");
    relay
        .wait_for_req("after-panic", WAIT)
        .await
        .expect("works after panic");
}

#[actix::test]
async fn reconnect_on_request_starts_the_backoff_over() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    pool.send(Reconnect::new(relay.url()))
        .await
        .expect("alive")
        .expect("reconnecting");
    let m = inbox.disconnected(&relay.url()).await;
    assert!(matches!(
        m.kind,
        MessageKind::Disconnected {
            reason: DisconnectReason::ReconnectRequested,
            ..
        }
    ));
    inbox.connected(&relay.url()).await;
    relay
        .wait_for_connections_total(2, WAIT)
        .await
        .expect("a second socket");
}

#[actix::test]
async fn shutdown_closes_every_socket_and_answers_pending_requests() {
    use actix_nostr::pool::{Fetch, Publish, Shutdown};
    use actix_nostr::protocol::{EventBuilder, Keys};
    use actix_nostr::relay::{FetchEnd, PublishOutcome};

    let relay = TestRelay::builder()
        .never_ok(true)
        .never_eose(true)
        .start()
        .await
        .expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url_for("/a"), relay.url_for("/b")]);
    inbox.connected(&relay.url_for("/a")).await;
    inbox.connected(&relay.url_for("/b")).await;
    let event = EventBuilder::text_note("pending").sign(&Keys::generate());
    let publish = pool.send(Publish::new(event).timeout(Duration::from_secs(60)));
    let fetch = pool.send(Fetch::new(vec![Filter::new()]).timeout(Duration::from_secs(60)));
    let publish = actix::spawn(publish);
    let fetch = actix::spawn(fetch);
    relay
        .wait_until(|r| r.open_subscriptions().len() == 2, WAIT)
        .await
        .expect("the fetch is open on both relays");

    pool.send(Shutdown).await.expect("alive");
    let published = publish.await.expect("task").expect("answered");
    assert!(published
        .relays
        .values()
        .all(|o| matches!(o, PublishOutcome::ShuttingDown { sent: true })));
    let fetched = fetch.await.expect("task").expect("answered");
    assert!(fetched
        .relays
        .values()
        .all(|e| *e == FetchEnd::ShuttingDown));
    for path in ["/a", "/b"] {
        let url = relay.url_for(path);
        let m = inbox.disconnected(&url).await;
        assert!(matches!(
            m.kind,
            MessageKind::Disconnected {
                reason: DisconnectReason::Shutdown,
                next_retry: None
            }
        ));
    }
    relay
        .wait_for_connections(0, WAIT)
        .await
        .expect("sockets closed");
    assert!(!pool.connected(), "the pool stopped");
}

#[actix::test]
async fn dropping_the_pool_closes_its_connections() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    drop(pool);
    inbox.disconnected(&relay.url()).await;
    relay
        .wait_for_connections(0, WAIT)
        .await
        .expect("socket closed");
}

/// Adds and removes recipients of a pool with `relays` relays, built by `shape` (which
/// arbiters its connections run on): a notice from every relay reaches exactly the current
/// recipients, whether a connection delivers directly or through the forwarder.
async fn recipients_can_be_added_and_removed_at_runtime(
    relays: usize,
    shape: fn(RelayPoolBuilder) -> RelayPoolBuilder,
) {
    use actix_nostr::pool::{AddRecipient, RemoveRecipient};
    let mut servers = Vec::new();
    for _ in 0..relays {
        servers.push(TestRelay::start().await.expect("relay starts"));
    }
    let (first, mut first_inbox) = recorder();
    let mut builder = RelayPool::builder()
        .recipient(first.clone())
        .default_options(fast_options());
    for relay in &servers {
        builder = builder.relay(relay.url());
    }
    let pool = shape(builder).start().expect("pool starts");
    for relay in &servers {
        first_inbox.connected(&relay.url()).await;
    }

    let (second, mut second_inbox) = recorder();
    assert!(pool
        .send(AddRecipient(second.clone()))
        .await
        .expect("alive"));
    assert!(
        !pool.send(AddRecipient(second)).await.expect("alive"),
        "added once"
    );
    for relay in &servers {
        relay.send_raw_text(r#"["NOTICE","to both"]"#);
        for inbox in [&mut first_inbox, &mut second_inbox] {
            inbox
                .expect("the notice", |m| {
                    m.relay.as_str() == relay.url()
                        && matches!(&m.kind, MessageKind::Notice(t) if t == "to both")
                })
                .await;
        }
    }

    assert!(pool.send(RemoveRecipient(first)).await.expect("alive"));
    for relay in &servers {
        relay.send_raw_text(r#"["NOTICE","second only"]"#);
        second_inbox
            .expect("the notice", |m| {
                m.relay.as_str() == relay.url()
                    && matches!(&m.kind, MessageKind::Notice(t) if t == "second only")
            })
            .await;
    }
    let leaked = first_inbox
        .expect_within(
            "nothing",
            Duration::from_millis(300),
            |m| matches!(&m.kind, MessageKind::Notice(t) if t == "second only"),
        )
        .await;
    assert!(leaked.is_none(), "a removed recipient still got messages");
}

#[actix::test]
async fn recipients_can_be_added_and_removed_at_runtime_across_threads() {
    recipients_can_be_added_and_removed_at_runtime(1, |b| b.arbiters(1)).await;
}

#[actix::test]
async fn recipients_can_be_added_and_removed_at_runtime_on_one_thread() {
    recipients_can_be_added_and_removed_at_runtime(1, |b| b.arbiters(0)).await;
}

/// The pool's own arbiter and a dedicated one: the first relay delivers directly, the second
/// through the forwarder, the third directly again.
#[actix::test]
async fn recipients_can_be_added_and_removed_at_runtime_on_mixed_threads() {
    recipients_can_be_added_and_removed_at_runtime(3, |b| b.arbiters_with_own(1)).await;
}
