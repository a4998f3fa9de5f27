//! Every way a pool ends — its actix System stopped, its last address dropped, a `Shutdown`
//! message — closes every socket with a WebSocket close frame (the relay counts the close
//! frames it receives, which a dropped TCP connection does not send) and leaves no task
//! behind: the relays see no connection afterwards and no reconnect ever comes (a bounded
//! negative wait, long against the 50-100 ms retry delays). Requests still pending when a
//! System stops end at once instead of hanging.
#![cfg(feature = "testing")]

mod support;

use std::sync::mpsc;
use std::time::Duration;

use actix::prelude::*;
use actix_nostr::pool::{Fetch, Publish, RelayPool, Shutdown, Subscribe};
use actix_nostr::protocol::{EventBuilder, Filter, Keys};
use actix_nostr::relay::FetchEnd;
use actix_nostr::testing::TestRelay;
use support::{fast_options, recorder, WAIT};

/// Long enough for any leftover retry timer (50-100 ms) to fire several times.
const NO_RECONNECT: Duration = Duration::from_millis(1_000);

async fn relays(n: usize) -> Vec<TestRelay> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            TestRelay::builder()
                .never_ok(true)
                .never_eose(true)
                .start()
                .await
                .expect("relay starts"),
        );
    }
    out
}

/// A pool on `relays`, with a subscription open on each; returns once every relay holds it.
async fn pool_on(relays: &[TestRelay]) -> Addr<RelayPool> {
    let (recipient, _inbox) = recorder();
    let mut builder = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options());
    for r in relays {
        builder = builder.relay(r.url());
    }
    let pool = builder.start().expect("pool starts");
    pool.send(Subscribe::new(vec![Filter::new()]).id("live"))
        .await
        .expect("alive")
        .expect("subscribed");
    for r in relays {
        r.wait_until(|r| r.open_subscriptions().len() == 1, WAIT)
            .await
            .expect("subscription open");
    }
    pool
}

/// Each relay: its one socket ended with a close frame, and nothing connects again.
async fn closed_cleanly_and_for_good(relays: &[TestRelay]) {
    for (i, r) in relays.iter().enumerate() {
        r.wait_until(|r| r.connections_now() == 0, WAIT)
            .await
            .unwrap_or_else(|e| panic!("relay {i}: {e}"));
        assert_eq!(r.connections_total(), 1, "relay {i}");
        assert_eq!(
            r.closes_received(),
            1,
            "relay {i}: the socket ended without a close frame"
        );
    }
    for (i, r) in relays.iter().enumerate() {
        let again = r.wait_for_connections_total(2, NO_RECONNECT).await;
        assert!(again.is_err(), "relay {i}: something reconnected");
    }
}

#[actix::test]
async fn stopping_the_system_closes_every_socket_with_a_close_frame() {
    let relays = relays(3).await;
    let urls: Vec<String> = relays.iter().map(TestRelay::url).collect();
    let (started_tx, started_rx) = mpsc::channel();
    let (ended_tx, ended_rx) = mpsc::channel();
    // The application: its own System on its own thread, running until stopped.
    let app = std::thread::spawn(move || {
        let system = System::new();
        let pool = system.block_on(async move {
            let (recipient, _inbox) = recorder();
            let mut builder = RelayPool::builder()
                .recipient(recipient)
                .default_options(fast_options());
            for url in &urls {
                builder = builder.relay(url);
            }
            let pool = builder.start().expect("pool starts");
            pool.send(Subscribe::new(vec![Filter::new()]).id("live"))
                .await
                .expect("alive")
                .expect("subscribed");
            pool
        });
        let _ = started_tx.send((System::current(), pool.clone()));
        let code = system.run();
        let _ = ended_tx.send(code.is_ok());
        drop(pool);
    });
    let (system, pool) = started_rx.recv_timeout(WAIT).expect("the app started");
    for r in &relays {
        r.wait_until(|r| r.open_subscriptions().len() == 1, WAIT)
            .await
            .expect("subscription open");
    }
    // Requests still waiting when the System goes away: they must end, not hang.
    let event = EventBuilder::text_note("pending").sign(&Keys::generate());
    let publish = actix::spawn(pool.send(Publish::new(event).timeout(Duration::from_secs(60))));
    let fetch =
        actix::spawn(pool.send(Fetch::new(vec![Filter::new()]).timeout(Duration::from_secs(60))));
    for r in &relays {
        r.wait_until(|r| r.open_subscriptions().len() == 2, WAIT)
            .await
            .expect("fetch open");
        r.wait_for_frame(|f| f.verb() == Some("EVENT"), WAIT)
            .await
            .expect("publish written");
    }

    system.stop();
    assert_eq!(ended_rx.recv_timeout(WAIT), Ok(true), "the System stopped");
    app.join().expect("the app thread ends");
    closed_cleanly_and_for_good(&relays).await;

    // Their handlers ran inside the stopped System and were dropped with it: a caller
    // elsewhere learns it at once from its mailbox (a `Shutdown` message, instead, answers
    // them with `ShuttingDown`: tests/pool_relays.rs).
    let published = actix::clock::timeout(WAIT, publish)
        .await
        .expect("the publish ended")
        .expect("task");
    // Which ends first is a race between the pool's arbiter and the connections' arbiters:
    // either the caller's mailbox request fails, or the pool answered with every relay
    // unanswered. Both end at once; neither may claim an OK that never came.
    match &published {
        Err(MailboxError::Closed) => {}
        Ok(result) => assert!(
            result.relays.len() == relays.len() && result.relays.values().all(|o| !o.is_accepted()),
            "{published:?}"
        ),
        Err(other) => panic!("{other:?}"),
    }
    let fetched = actix::clock::timeout(WAIT, fetch)
        .await
        .expect("the fetch ended")
        .expect("task");
    match &fetched {
        Err(MailboxError::Closed) => {}
        Ok(result) => assert!(
            result.relays.values().all(|e| *e != FetchEnd::Eose),
            "{fetched:?}"
        ),
        Err(other) => panic!("{other:?}"),
    }
}

#[actix::test]
async fn dropping_the_pool_closes_every_socket_with_a_close_frame() {
    let relays = relays(3).await;
    let pool = pool_on(&relays).await;
    drop(pool);
    closed_cleanly_and_for_good(&relays).await;
}

#[actix::test]
async fn shutdown_closes_every_socket_with_a_close_frame() {
    let relays = relays(3).await;
    let pool = pool_on(&relays).await;
    pool.send(Shutdown).await.expect("alive");
    closed_cleanly_and_for_good(&relays).await;
    assert!(!pool.connected(), "the pool stopped");
}
