//! The fault matrix: three relays with a live subscription, a publisher writing a known
//! sequence of signed events into all of them, and one fault family per test — relays
//! killed and restarted, going silent, refusing connections, losing their store, closing
//! with 1012/1013, and a user actor that stops reading while the relays flood.
//!
//! The publisher writes straight into the relays' stores (`TestRelay::publish`) rather
//! than through the pool's `Publish`: an event that reaches a relay while the pool is cut
//! off from it can then only arrive through that relay's resubscription after it returns
//! (or from the others), which is what these tests are about; a `Publish` would wait in the
//! pool's queue and arrive live, hiding a resubscription gap. (The refused-connections test
//! also publishes through the pool while every relay is down.)
//!
//! After each fault family the harness (`fault_harness`) checks: every event delivered
//! exactly once, in order per relay for live events, no subscription lost (each relay ends
//! with exactly the pool's REQs on one connection), and reconnects on the backoff schedule
//! with the attempts accounted for. Fault schedules are random from a printed seed;
//! `FAULT_SEED=<seed>` replays one, and `RUST_LOG=debug` logs both sides (the pool and
//! the relays) into the failing test's output.
//!
//! These tests found that a reset socket's failing write half tore down every later
//! connection to its relay ("broken pipe" right after each connect); it is pinned by
//! tests/reconnect_regressions.rs.
#![cfg(feature = "testing")]

mod fault_harness;

use std::time::{Duration, Instant};

use actix_nostr::pool::{Publish, Stats};
use actix_nostr::relay::{DisconnectReason, MessageKind, PublishOutcome};
use actix_nostr::testing::TestRelay;
use fault_harness::{
    fault_options, fault_seed, own_sub, Harness, PausePlan, ALL, PAUSE_ACTIVE, PAUSE_DONE, RELAYS,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Restarts in the kill/restart test, over the three relays together.
const CYCLES: usize = 100;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One to `max` distinct relays, at random.
fn victims(rng: &mut StdRng, max: usize) -> Vec<usize> {
    let count = rng.random_range(1..=max);
    let mut all: Vec<usize> = (0..RELAYS).collect();
    while all.len() > count {
        let drop = rng.random_range(0..all.len());
        all.remove(drop);
    }
    all
}

fn count_of(h: &Harness, i: usize, pred: impl Fn(&MessageKind) -> bool) -> usize {
    h.messages_of(i).filter(|m| pred(&m.kind)).count()
}

fn is_connected(kind: &MessageKind) -> bool {
    matches!(kind, MessageKind::Connected)
}

/// Publishes at random moments for `period` (the pauses are the schedule, not a
/// synchronisation).
async fn publish_for(h: &mut Harness, rng: &mut StdRng, period: Duration) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        h.publish();
        actix::clock::sleep(ms(rng.random_range(5..30))).await;
        h.pump();
    }
}

#[actix::test]
async fn relays_killed_and_restarted_100_times_lose_and_duplicate_nothing() {
    let _serial = fault_harness::serial().await;
    let seed = fault_seed("kill/restart");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::start(seed, fault_options(), TestRelay::builder, None).await;
    let mut restarts = [0usize; RELAYS];
    for _ in 0..CYCLES {
        for _ in 0..rng.random_range(0..4) {
            h.publish();
        }
        actix::clock::sleep(ms(rng.random_range(0..40))).await;
        let i = rng.random_range(0..RELAYS);
        // Killed (no close frame, every socket dies) and back on the same port, store kept.
        h.relays[i].restart(true).await.expect("relay restarts");
        restarts[i] += 1;
        // Published while the pool is still cut off from relay i.
        h.publish();
        h.pump();
    }
    h.publish_many(3);
    let stats = h.settle_and_check().await;
    for (i, restarted) in restarts.iter().enumerate() {
        println!(
            "relay {i}: {restarted} restarts, {} connects, {} attempts",
            count_of(&h, i, is_connected),
            Harness::attempts(&stats, &h.urls[i])
        );
    }
    assert_eq!(restarts.iter().sum::<usize>(), CYCLES);
    assert!(
        stats.total.reconnects > 0,
        "the restarts were noticed: {:?}",
        stats.total
    );
}

#[actix::test]
async fn relays_going_silent_are_detected_by_ping_and_lose_nothing() {
    let _serial = fault_harness::serial().await;
    let seed = fault_seed("silent");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::start(seed, fault_options(), TestRelay::builder, None).await;
    let mut silenced = [0usize; RELAYS];
    for _ in 0..4 {
        let victims = victims(&mut rng, 2);
        let before: Vec<usize> = (0..RELAYS).map(|i| ping_timeouts(&h, i)).collect();
        for &i in &victims {
            h.relays[i].set_silent(true);
            silenced[i] += 1;
        }
        // Half-open: the sockets stay up, nothing comes back, events keep being published.
        let silence = ms(rng.random_range(300..700));
        publish_for(&mut h, &mut rng, silence).await;
        // Stay silent until the pool noticed: frames a silent relay would have sent on a
        // socket it keeps are gone for good, so the silence must outlast detection.
        for &i in &victims {
            h.wait_for(&format!("ping timeout of relay {i}"), |h| {
                ping_timeouts(h, i) > before[i]
            })
            .await;
        }
        for &i in &victims {
            h.relays[i].set_silent(false);
        }
        let period = ms(rng.random_range(50..200));
        publish_for(&mut h, &mut rng, period).await;
    }
    h.publish_many(3);
    h.settle_and_check().await;
    for (i, n) in silenced.iter().enumerate() {
        assert!(ping_timeouts(&h, i) >= *n, "relay {i}");
    }
}

fn ping_timeouts(h: &Harness, i: usize) -> usize {
    count_of(h, i, |k| {
        matches!(
            k,
            MessageKind::Disconnected {
                reason: DisconnectReason::PingTimeout,
                ..
            }
        )
    })
}

#[actix::test]
async fn refused_connections_are_retried_on_the_backoff_schedule_and_lose_nothing() {
    let _serial = fault_harness::serial().await;
    let seed = fault_seed("refused");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::start(seed, fault_options(), TestRelay::builder, None).await;
    for _ in 0..4 {
        let victims = victims(&mut rng, RELAYS);
        let connects: Vec<usize> = (0..RELAYS).map(|i| count_of(&h, i, is_connected)).collect();
        let refusal = ms(rng.random_range(150..450));
        for &i in &victims {
            h.relays[i].refuse_for(refusal);
            assert_eq!(h.relays[i].drop_connections(), 1);
        }
        publish_for(&mut h, &mut rng, refusal).await;
        for &i in &victims {
            h.wait_for(&format!("relay {i} accepted again"), |h| {
                count_of(h, i, is_connected) > connects[i]
            })
            .await;
        }
    }

    // Every relay down, and an event published through the pool meanwhile: it waits in
    // each connection's queue and is accepted everywhere once the relays accept again.
    let connects: Vec<usize> = (0..RELAYS).map(|i| count_of(&h, i, is_connected)).collect();
    let disconnects: Vec<usize> = (0..RELAYS).map(|i| h.disconnects(i)).collect();
    for relay in &h.relays {
        relay.set_refusing(true);
        relay.drop_connections();
    }
    for (i, before) in disconnects.into_iter().enumerate() {
        h.wait_for(&format!("relay {i} down"), |h| h.disconnects(i) > before)
            .await;
    }
    let (n, event) = h.next_event();
    let publish = actix::spawn(
        h.pool
            .send(Publish::new(event).timeout(Duration::from_secs(15))),
    );
    let period = ms(rng.random_range(100..300));
    publish_for(&mut h, &mut rng, period).await;
    for relay in &h.relays {
        relay.set_refusing(false);
    }
    for (i, before) in connects.into_iter().enumerate() {
        h.wait_for(&format!("relay {i} back"), |h| {
            count_of(h, i, is_connected) > before
        })
        .await;
    }
    let outcome = publish.await.expect("task").expect("pool alive");
    assert!(
        outcome
            .relays
            .values()
            .all(|o| matches!(o, PublishOutcome::Accepted { .. })),
        "seed {seed}: event {n} published while every relay refused: {outcome:?}"
    );
    h.publish_many(3);
    let stats = h.settle_and_check().await;
    // The listeners never went away, so every attempt reached its relay: accepted or
    // refused, one each.
    for i in 0..RELAYS {
        let seen = h.relays[i].connections_total() + h.relays[i].refused_total();
        assert_eq!(
            seen as u64,
            Harness::attempts(&stats, &h.urls[i]),
            "seed {seed}: relay {i}"
        );
    }
}

#[actix::test]
async fn a_relay_restarted_with_its_store_wiped_is_covered_by_the_others_once() {
    let _serial = fault_harness::serial().await;
    let seed = fault_seed("wiped store");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::start(seed, fault_options(), TestRelay::builder, None).await;
    let mut order: Vec<usize> = (0..RELAYS).collect();
    for k in (1..order.len()).rev() {
        order.swap(k, rng.random_range(0..=k));
    }
    for victim in order {
        h.publish_many(rng.random_range(1..4));
        // Every relay cut off; the victim loses its store while the others keep theirs.
        let disconnects: Vec<usize> = (0..RELAYS).map(|i| h.disconnects(i)).collect();
        for relay in &h.relays {
            relay.set_refusing(true);
            relay.drop_connections();
        }
        for (i, before) in disconnects.into_iter().enumerate() {
            h.wait_for(&format!("relay {i} cut off"), |h| h.disconnects(i) > before)
                .await;
        }
        let lost_from = h.sequence.len();
        h.publish_many(rng.random_range(2..5));
        h.relays[victim]
            .restart(false)
            .await
            .expect("relay restarts");
        h.store_wiped(victim);
        // The victim comes back first, empty; events published now reach it live.
        h.relays[victim].set_refusing(false);
        let url = h.urls[victim].clone();
        h.wait_for("the wiped relay resubscribed", |h| {
            h.relays[victim].open_subscriptions().len() == 2
        })
        .await;
        let live_from = h.sequence.len();
        h.publish_many(2);
        h.wait_for("live events from the wiped relay", |h| {
            (live_from..h.sequence.len()).all(|n| h.delivered(ALL).contains_key(&n))
        })
        .await;
        for relay in &h.relays {
            relay.set_refusing(false);
        }
        // What the victim lost can only come from the others.
        h.wait_for("the lost events from the other relays", |h| {
            (lost_from..live_from).all(|n| h.delivered(ALL).contains_key(&n))
        })
        .await;
        let delivered = h.delivered(ALL);
        for n in lost_from..live_from {
            assert!(
                delivered[&n].iter().all(|r| *r != url),
                "seed {seed}: event {n} came from the relay that lost it"
            );
        }
        assert!(
            h.delivered(&own_sub(victim))
                .keys()
                .all(|n| !(lost_from..live_from).contains(n)),
            "seed {seed}: the wiped relay sent events it no longer has"
        );
        // Every relay back with its subscriptions before the next round cuts them off.
        h.wait_relays_settled().await;
    }
    h.publish_many(2);
    h.settle_and_check().await;
}

#[actix::test]
async fn relays_closing_with_1012_and_1013_are_rejoined_and_lose_nothing() {
    let _serial = fault_harness::serial().await;
    let seed = fault_seed("close codes");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::start(seed, fault_options(), TestRelay::builder, None).await;
    let codes = [(1012, "service restart"), (1013, "try again later")];
    for round in 0..8 {
        let (code, reason) = codes[round % 2];
        let i = rng.random_range(0..RELAYS);
        h.wait_relays_settled().await;
        let period = ms(rng.random_range(0..60));
        publish_for(&mut h, &mut rng, period).await;
        let before = closed_with(&h, i, code);
        assert_eq!(h.relays[i].close_connections(code, reason), 1);
        h.publish();
        h.wait_for(&format!("relay {i} closed with {code}"), |h| {
            closed_with(h, i, code) > before
        })
        .await;
        let closed = h
            .messages_of(i)
            .filter_map(|m| match &m.kind {
                MessageKind::Disconnected {
                    reason:
                        DisconnectReason::ClosedByRelay {
                            code: Some(c),
                            reason,
                        },
                    next_retry,
                } if *c == code => Some((reason.clone(), *next_retry)),
                _ => None,
            })
            .last();
        let (text, next_retry) = closed.expect("a close was reported");
        assert_eq!(text, reason, "the relay's reason is passed on");
        assert!(next_retry.is_some(), "a closed relay is retried");
    }
    h.publish_many(3);
    h.settle_and_check().await;
}

fn closed_with(h: &Harness, i: usize, code: u16) -> usize {
    count_of(h, i, |k| {
        matches!(
            k,
            MessageKind::Disconnected {
                reason: DisconnectReason::ClosedByRelay { code: Some(c), .. },
                ..
            } if *c == code
        )
    })
}

#[actix::test]
async fn a_user_actor_paused_under_a_flood_keeps_memory_bounded_and_loses_nothing() {
    let _serial = fault_harness::serial().await;
    const WINDOW: usize = 16;
    const FLOOD: usize = 1_500;
    let seed = fault_seed("paused consumer");
    let mut rng = StdRng::seed_from_u64(seed);
    let plan = PausePlan {
        after: rng.random_range(20..200),
        pause: ms(rng.random_range(2_000..3_000)),
    };
    let options = fault_options().delivery_window(WINDOW);
    let mut h = Harness::start(seed, options, TestRelay::builder, Some(plan)).await;
    // Each event reaches "all" once and its relay's own subscription on each relay: four
    // deliveries per event.
    h.publish_many(FLOOD);
    let flood_deliveries = (FLOOD * (RELAYS + 1)) as u64;

    // While the user actor sleeps, what the connections handed it and it has not handled
    // is what sits in memory: bounded by the delivery window, whatever the flood.
    let bound = (2 * RELAYS * WINDOW) as u64;
    let mut samples = 0;
    let mut max_gap = 0;
    let mut max_received = 0;
    let deadline = Instant::now() + fault_harness::WAIT;
    while h.pause_state.load(std::sync::atomic::Ordering::SeqCst) != PAUSE_DONE {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the pause never ended"
        );
        let stats = h.pool.send(Stats).await.expect("pool alive");
        let consumed = h.consumed.load(std::sync::atomic::Ordering::SeqCst);
        if h.pause_state.load(std::sync::atomic::Ordering::SeqCst) == PAUSE_ACTIVE {
            samples += 1;
            let gap = stats.total.events_delivered.saturating_sub(consumed);
            max_gap = max_gap.max(gap);
            max_received = max_received.max(stats.total.events_received);
            assert!(
                gap <= bound,
                "seed {seed}: {gap} events handed to a paused actor (bound {bound})"
            );
            assert!(
                stats.total.in_flight <= bound,
                "seed {seed}: {} in flight (bound {bound})",
                stats.total.in_flight
            );
        }
        // Sampling pace, not synchronisation.
        actix::clock::sleep(ms(10)).await;
    }
    println!(
        "paused {:?} after {} events: {samples} samples, max gap {max_gap}, max events read \
         {max_received} of {flood_deliveries}",
        plan.pause, plan.after
    );
    assert!(samples > 10, "seed {seed}: the pause was observed");
    assert!(
        max_received < flood_deliveries / 4,
        "seed {seed}: the sockets were read on while the actor was paused ({max_received})"
    );
    let stats = h.settle_and_check().await;
    assert_eq!(stats.total.events_delivered, flood_deliveries);
    assert_eq!(
        stats.total.reconnects, 0,
        "a paused consumer is not a dead relay: {:?}",
        stats.total
    );
    for relay in &h.relays {
        assert_eq!(relay.connections_total(), 1);
    }
}
