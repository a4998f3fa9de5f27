//! Bugs the fault matrix (tests/fault_matrix.rs) ran into, each pinned by a deterministic
//! test: what a reconnect must carry over from the old socket to the new one.
#![cfg(feature = "testing")]

mod support;

use std::time::{Duration, Instant};

use actix::Addr;
use actix_nostr::pool::{Publish, Reconnect, RelayPool, Stats, Subscribe};
use actix_nostr::protocol::{ClientMessage, EventBuilder, Filter, Keys, Kind, Timestamp};
use actix_nostr::relay::{DisconnectReason, MessageKind, PublishOutcome};
use actix_nostr::testing::TestRelay;
use support::{fast_options, pool_on, recorder, Inbox, WAIT};

async fn eose(inbox: &mut Inbox, sub: &str) {
    let sub = sub.to_owned();
    inbox
        .expect(
            &format!("EOSE {sub}"),
            move |m| matches!(&m.kind, MessageKind::Eose(id) if id.as_str() == sub),
        )
        .await;
}

/// `Reconnect` used to drop the socket without marking the subscriptions down, so the new
/// socket never got their REQs: every subscription on that relay was silently lost.
#[actix::test]
async fn a_requested_reconnect_resends_every_subscription() {
    let relay = TestRelay::start().await.expect("relay starts");
    let keys = Keys::generate();
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    pool.send(Subscribe::new(vec![Filter::new().kind(Kind::TEXT_NOTE)]).id("feed"))
        .await
        .expect("alive")
        .expect("subscribed");
    eose(&mut inbox, "feed").await;

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
    eose(&mut inbox, "feed").await;
    relay
        .wait_until(
            |r| {
                r.connections_total() == 2
                    && r.connections_now() == 1
                    && r.open_subscriptions().len() == 1
            },
            WAIT,
        )
        .await
        .expect("the new socket holds the subscription");
    let note = EventBuilder::text_note("after reconnect").sign(&keys);
    relay.publish(note.clone());
    inbox
        .event("the event, live on the new socket", note.id)
        .await;
}

/// A publish written to a socket that then died was left to time out as `NoAnswer`, though
/// the relay was back well within the timeout: the relay may never have read it, and
/// sending it again is harmless (an event is identified by its id; a relay that has it
/// answers `duplicate:`).
#[actix::test]
async fn a_publish_written_to_a_socket_that_dies_is_sent_again_after_reconnect() {
    let relay = TestRelay::builder()
        .never_ok(true)
        .start()
        .await
        .expect("relay starts");
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    inbox.connected(&relay.url()).await;
    let event = EventBuilder::text_note("in flight").sign(&Keys::generate());
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    let publish = actix::spawn(pool.send(Publish::new(event.clone()).timeout(timeout)));
    relay
        .wait_for_frame(|f| f.event().is_some_and(|e| e.id == event.id), WAIT)
        .await
        .expect("the EVENT reached the relay");

    // The relay took the event but its OK never left: the socket dies.
    relay.set_never_ok(false);
    relay.drop_connections();
    let outcome = publish.await.expect("task").expect("alive");
    let answer = outcome.relays.values().next().cloned();
    assert!(
        matches!(answer, Some(PublishOutcome::Accepted { ref message }) if message.starts_with("duplicate:")),
        "{outcome:?}"
    );
    assert!(started.elapsed() < timeout, "answered after the reconnect");
    let sent = relay
        .received()
        .iter()
        .filter(|f| matches!(&f.message, Ok(ClientMessage::Event(e)) if e.id == event.id))
        .count();
    assert_eq!(sent, 2, "sent on the old socket and again on the new one");
}

/// Relays send stored events newest first. A resubscription used to ask only for events
/// from the newest one already received (minus the overlap), even when the socket died
/// before EOSE — so the older stored events that had not arrived yet were skipped for good.
#[actix::test]
async fn a_backfill_cut_before_eose_does_not_move_since() {
    let relay = TestRelay::builder()
        .never_eose(true)
        .start()
        .await
        .expect("relay starts");
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    for age in [300, 200, 100] {
        relay.publish(
            EventBuilder::text_note(format!("{age} s old"))
                .created_at(Timestamp::from_secs(now - age))
                .sign(&keys),
        );
    }
    let (recipient, mut inbox) = recorder();
    let pool = RelayPool::builder()
        .recipient(recipient)
        .default_options(fast_options().resubscribe_overlap(Duration::from_secs(10)))
        .relay(relay.url())
        .start()
        .expect("pool starts");
    let filter = Filter::new().kind(Kind::TEXT_NOTE);
    pool.send(Subscribe::new(vec![filter.clone()]).id("feed"))
        .await
        .expect("alive")
        .expect("subscribed");
    for n in 0..3 {
        inbox
            .expect(&format!("stored event {n}"), |m| {
                matches!(m.kind, MessageKind::Event { .. })
            })
            .await;
    }
    // No EOSE yet: the backfill is not known to be complete when the socket dies.
    let cursor = relay.received_count();
    relay.drop_connections();
    let req = relay
        .wait_for_frame_after(cursor, |f| f.is_req("feed"), WAIT)
        .await
        .expect("REQ re-sent on reconnect");
    match req.message {
        Ok(ClientMessage::Req { filters, .. }) => assert_eq!(filters, vec![filter]),
        other => panic!("unexpected {other:?}"),
    }

    // Once EOSE came on a socket, the next resubscription does move up.
    relay.set_never_eose(false);
    let cursor = relay.received_count();
    relay.drop_connections();
    relay
        .wait_for_frame_after(cursor, |f| f.is_req("feed"), WAIT)
        .await
        .expect("REQ re-sent on reconnect");
    eose(&mut inbox, "feed").await;
    let cursor = relay.received_count();
    relay.drop_connections();
    let req = relay
        .wait_for_frame_after(cursor, |f| f.is_req("feed"), WAIT)
        .await
        .expect("REQ re-sent on reconnect");
    match req.message {
        Ok(ClientMessage::Req { filters, .. }) => {
            assert_eq!(filters[0].since, Some(Timestamp::from_secs(now - 100 - 10)))
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// A socket's write half whose close failed (the relay reset the connection while frames
/// were still waiting to be written) failed again on every poll of the connection actor,
/// and each failure was taken for the current socket's: every later connection was torn
/// down with "broken pipe" right after it opened, for ever, and that relay's subscriptions
/// stalled.
#[actix::test]
async fn a_failed_write_on_an_old_socket_does_not_tear_down_the_new_one() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (reader, writer) = (Keys::generate(), Keys::generate());
    let (pool, mut inbox) = subscribed_to(&relay, &reader).await;

    // The relay stops reading; the client writes more than loopback's socket buffers hold
    // (about 10 MB), so the rest waits in its write half.
    relay.set_silent(true);
    fill_write_half(&pool, &writer).await;
    // Closed with unread data, the relay's socket resets the connection; the client's
    // buffered writes can only fail.
    relay.drop_connections();
    inbox.disconnected(&relay.url()).await;
    relay.set_silent(false);
    inbox.connected(&relay.url()).await;
    assert_stays_connected(&relay, &reader, &mut inbox, 2, 1).await;
}

/// The same, when the old socket's write half is already closing: a requested reconnect
/// leaves it flushing frames into a relay that stopped reading, and when the relay then
/// resets the connection, its close fails after a newer socket has taken over.
#[actix::test]
async fn a_failed_close_of_a_replaced_socket_does_not_tear_down_the_new_one() {
    let relay = TestRelay::start().await.expect("relay starts");
    let (reader, writer) = (Keys::generate(), Keys::generate());
    let (pool, mut inbox) = subscribed_to(&relay, &reader).await;

    relay.set_silent(true);
    fill_write_half(&pool, &writer).await;
    pool.send(Reconnect::new(relay.url()))
        .await
        .expect("alive")
        .expect("reconnecting");
    inbox.disconnected(&relay.url()).await;
    inbox.connected(&relay.url()).await;
    relay
        .wait_for_connections_total(2, WAIT)
        .await
        .expect("the second socket reached the relay");

    // Both sockets reset: the old one's close fails, and so do the new one's writes.
    relay.drop_connections();
    inbox.disconnected(&relay.url()).await;
    relay.set_silent(false);
    inbox.connected(&relay.url()).await;
    assert_stays_connected(&relay, &reader, &mut inbox, 3, 2).await;
}

/// A pool on `relay` with the live subscription "feed" to `reader`'s notes, past its EOSE.
/// (The publishes of these tests are by another key: the relay does not echo them back.)
async fn subscribed_to(relay: &TestRelay, reader: &Keys) -> (Addr<RelayPool>, Inbox) {
    let (pool, mut inbox) = pool_on(vec![relay.url()]);
    let filter = Filter::new()
        .kind(Kind::TEXT_NOTE)
        .author(reader.public_key());
    pool.send(Subscribe::new(vec![filter]).id("feed"))
        .await
        .expect("alive")
        .expect("subscribed");
    eose(&mut inbox, "feed").await;
    (pool, inbox)
}

/// Publishes more than loopback's socket buffers hold (about 10 MB) to a relay that stopped
/// reading, and waits until the connection has written them all to its write half.
async fn fill_write_half(pool: &Addr<RelayPool>, writer: &Keys) {
    let padding = "x".repeat(50_000);
    let before = pool.send(Stats).await.expect("alive").total.frames_out;
    let publishes = 400;
    for n in 0..publishes {
        let event = EventBuilder::text_note(format!("{n} {padding}")).sign(writer);
        pool.do_send(Publish::new(event));
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = pool.send(Stats).await.expect("alive");
        if stats.total.frames_out >= before + publishes {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "publishes not written: {stats:?}"
        );
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
}

/// After the last reconnect: the subscription is served live on a socket that stays open,
/// after exactly `connections` connections and `disconnects` disconnections.
async fn assert_stays_connected(
    relay: &TestRelay,
    reader: &Keys,
    inbox: &mut Inbox,
    connections: usize,
    disconnects: usize,
) {
    eose(inbox, "feed").await;
    let note = EventBuilder::text_note("after the reset").sign(reader);
    relay.publish(note.clone());
    inbox
        .event("the event, live on the new socket", note.id)
        .await;
    relay
        .wait_for_connections(1, WAIT)
        .await
        .expect("the new socket stays open");
    assert_eq!(relay.connections_total(), connections);
    inbox.drain();
    let seen = inbox
        .seen
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Disconnected { .. }))
        .count();
    assert_eq!(seen, disconnects, "{:#?}", inbox.seen);
}
