//! A hostile relay next to a good one in the same pool. Each test makes the hostile relay
//! send one kind of garbage or abuse and checks: no panic (no actor restart), nothing
//! forged delivered, the case counted in `Stats` and reported as a typed `RelayError`, the
//! hostile connection either still usable (an EVENT/OK and REQ round trip after the abuse)
//! or closed with a clear reason, and the good relay untouched.
#![cfg(feature = "testing")]

mod support;

use std::time::Instant;

use actix::Addr;
use actix_nostr::pool::{Publish, RelayPool, Relays, Stats, Subscribe};
use actix_nostr::protocol::{
    ClientMessage, Event, EventBuilder, EventId, Filter, Keys, Kind, Signature,
};
use actix_nostr::relay::{
    DisconnectReason, MessageKind, PublishOutcome, RelayError, RelayMessage, RelayOptions,
    RelayStatsSnapshot,
};
use actix_nostr::testing::TestRelay;
use support::{fast_options, recorder, Inbox, WAIT};

/// A limit small enough to cross cheaply; the library's minimum is 1 KiB.
const MAX_MESSAGE: usize = 64 * 1024;

struct Scene {
    hostile: TestRelay,
    good: TestRelay,
    pool: Addr<RelayPool>,
    inbox: Inbox,
    keys: Keys,
}

impl Scene {
    /// Both relays in one pool (with keys, so AUTH is answered) and a live subscription
    /// `feed` on both.
    async fn start() -> Scene {
        Scene::start_with(fast_options().max_message_size(MAX_MESSAGE)).await
    }

    async fn start_with(options: RelayOptions) -> Scene {
        let hostile = TestRelay::start().await.expect("relay starts");
        let good = TestRelay::start().await.expect("relay starts");
        let (recipient, inbox) = recorder();
        let pool = RelayPool::builder()
            .recipient(recipient)
            .keys(Keys::generate())
            .default_options(options)
            .relay(hostile.url())
            .relay(good.url())
            .start()
            .expect("pool starts");
        let mut scene = Scene {
            hostile,
            good,
            pool,
            inbox,
            keys: Keys::generate(),
        };
        scene.subscribe("feed").await;
        scene
    }

    async fn subscribe(&mut self, id: &str) {
        self.pool
            .send(Subscribe::new(vec![Filter::new().kind(Kind::TEXT_NOTE)]).id(id))
            .await
            .expect("alive")
            .expect("subscribed");
        for url in [self.hostile.url(), self.good.url()] {
            let sub = id.to_owned();
            self.inbox
                .expect(&format!("EOSE {id} from {url}"), move |m| {
                    m.relay.as_str() == url
                        && matches!(&m.kind, MessageKind::Eose(s) if s.as_str() == sub)
                })
                .await;
        }
    }

    async fn stats_of(&self, relay: &TestRelay) -> RelayStatsSnapshot {
        let stats = self.pool.send(Stats).await.expect("alive");
        stats
            .relays
            .iter()
            .find(|(u, _)| u.as_str() == relay.url())
            .map(|(_, s)| s.clone())
            .expect("relay in the pool")
    }

    /// Waits for `n` errors from the hostile relay matching `pred`.
    async fn errors(&mut self, n: usize, what: &str, pred: impl Fn(&RelayError) -> bool) {
        let url = self.hostile.url();
        for k in 0..n {
            self.inbox
                .expect(&format!("{what} ({k} of {n})"), |m| {
                    m.relay.as_str() == url && matches!(&m.kind, MessageKind::Error(e) if pred(e))
                })
                .await;
        }
    }

    /// An EVENT/OK round trip through `relay`, and the event back live on `feed` (REQ).
    async fn round_trip(&mut self, relay: &str) {
        let note = EventBuilder::text_note(format!("round trip {relay}")).sign(&self.keys);
        let only = Relays::only([relay]).expect("url");
        let outcome = self
            .pool
            .send(Publish::new(note.clone()).relays(only))
            .await
            .expect("alive");
        let answer = outcome.relays.values().next().cloned();
        assert!(
            matches!(answer, Some(PublishOutcome::Accepted { .. })),
            "{relay}: {outcome:?}"
        );
        let url = relay.to_owned();
        self.inbox
            .expect(&format!("the round-trip event from {relay}"), move |m| {
                m.relay.as_str() == url
                    && matches!(&m.kind, MessageKind::Event { event, .. } if event.id == note.id)
            })
            .await;
    }

    /// The hostile connection still works, on its first socket.
    async fn hostile_still_usable(&mut self) {
        let url = self.hostile.url();
        self.round_trip(&url).await;
        assert_eq!(self.hostile.connections_total(), 1, "no reconnect happened");
    }

    /// What holds after every case: no actor died, every delivered event is genuine, the
    /// good relay saw nothing of it.
    async fn finish(mut self) {
        let url = self.good.url();
        self.round_trip(&url).await;
        self.inbox.drain();
        for m in &self.inbox.seen {
            assert!(
                !matches!(m.kind, MessageKind::Error(RelayError::ActorRestarted)),
                "a connection actor died: {m:?}"
            );
            if let MessageKind::Event { event, .. } = &m.kind {
                assert!(event.verify().is_ok(), "forged event delivered: {event:?}");
            }
            if m.relay.as_str() == url {
                assert!(
                    !matches!(
                        m.kind,
                        MessageKind::Error(_) | MessageKind::Disconnected { .. }
                    ),
                    "the good relay was affected: {m:?}"
                );
            }
        }
        let good = self.stats_of(&self.good).await;
        assert_eq!(good.errors, 0, "{good:?}");
        assert_eq!(good.events_invalid, 0, "{good:?}");
        assert_eq!(self.good.connections_total(), 1);
    }
}

fn is_invalid_frame(e: &RelayError) -> bool {
    matches!(e, RelayError::InvalidFrame { .. })
}

async fn invalid_frames_are_reported(frames: &[&str]) {
    let mut scene = Scene::start().await;
    let before = scene.stats_of(&scene.hostile).await;
    for frame in frames {
        assert_eq!(scene.hostile.send_raw_text(frame), 1);
    }
    scene
        .errors(frames.len(), "InvalidFrame", is_invalid_frame)
        .await;
    let after = scene.stats_of(&scene.hostile).await;
    assert_eq!(after.errors - before.errors, frames.len() as u64);
    scene.hostile_still_usable().await;
    scene.finish().await;
}

#[actix::test]
async fn broken_json_is_reported_as_invalid_frames() {
    invalid_frames_are_reported(&[
        "this is not json",
        r#"["EVENT","feed","#,
        r#"["NOTICE","unterminated]"#,
        "",
        "\u{0}\u{1}",
        r#"["OK","aa",tru]"#,
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ])
    .await;
}

#[actix::test]
async fn valid_json_of_the_wrong_shape_is_reported_as_invalid_frames() {
    invalid_frames_are_reported(&[
        r#"{"an":"object"}"#,
        "42",
        r#""EOSE""#,
        "null",
        r#"["EVENT"]"#,
        r#"["EVENT","feed"]"#,
        r#"["EVENT","feed",{"id":1}]"#,
        r#"["EVENT","feed",["not","an","object"]]"#,
        r#"["OK","not hex",true,""]"#,
        r#"["OK","0000000000000000000000000000000000000000000000000000000000000000","yes",""]"#,
        r#"["EOSE",5]"#,
        r#"["NOTICE",{"text":"hi"}]"#,
        r#"["COUNT","q",{"count":-1}]"#,
        r#"["CLOSED"]"#,
        r#"["AUTH",null]"#,
    ])
    .await;
}

#[actix::test]
async fn unknown_message_types_are_reported_as_invalid_frames() {
    invalid_frames_are_reported(&[
        r#"["HELLO","world"]"#,
        r#"["event","feed",{}]"#,
        "[]",
        r#"[1,2,3]"#,
        r#"["REQ","feed",{}]"#,
    ])
    .await;
}

#[actix::test]
async fn binary_frames_are_reported_and_ignored() {
    let mut scene = Scene::start().await;
    let before = scene.stats_of(&scene.hostile).await;
    scene.hostile.send_raw_binary(&[0xff; 16]);
    scene
        .hostile
        .send_raw_binary(br#"["NOTICE","binary JSON"]"#);
    scene.hostile.send_raw_binary(&[]);
    scene
        .errors(3, "BinaryFrame", |e| {
            matches!(e, RelayError::BinaryFrame { .. })
        })
        .await;
    let after = scene.stats_of(&scene.hostile).await;
    assert_eq!(after.errors - before.errors, 3);
    assert!(
        !scene
            .inbox
            .seen
            .iter()
            .any(|m| matches!(m.kind, MessageKind::Notice(_))),
        "a binary frame's content was acted on"
    );
    scene.hostile_still_usable().await;
    scene.finish().await;
}

fn event_frame(sub: &str, event: &Event) -> String {
    format!(r#"["EVENT","{sub}",{}]"#, event.as_json())
}

#[actix::test]
async fn an_event_for_a_subscription_never_opened_is_reported_and_dropped() {
    let mut scene = Scene::start().await;
    let stray = EventBuilder::text_note("stray").sign(&scene.keys);
    scene
        .hostile
        .send_raw_text(&event_frame("never-opened", &stray));
    scene
        .errors(1, "UnknownSubscription", |e| {
            matches!(e, RelayError::UnknownSubscription { event_id, .. } if *event_id == stray.id)
        })
        .await;
    let stats = scene.stats_of(&scene.hostile).await;
    assert_eq!(stats.events_delivered, 0);
    assert_eq!(stats.errors, 1);
    scene.hostile_still_usable().await;
    let delivered = scene
        .inbox
        .seen
        .iter()
        .any(|m| matches!(&m.kind, MessageKind::Event { event, .. } if event.id == stray.id));
    assert!(!delivered, "an event nobody asked for was delivered");
    scene.finish().await;
}

#[actix::test]
async fn events_with_bad_ids_bad_signatures_or_other_events_ids_are_never_delivered() {
    let mut scene = Scene::start().await;
    let keys = scene.keys.clone();
    let genuine = EventBuilder::text_note("genuine").sign(&keys);
    let mut bad_id = genuine.clone();
    bad_id.content = "tampered".into();
    let mut bad_sig = genuine.clone();
    let mut sig = *bad_sig.sig.as_bytes();
    sig[10] ^= 0x40;
    bad_sig.sig = Signature::from_bytes(sig);
    let mut other_id = EventBuilder::text_note("another").sign(&keys);
    other_id.id = genuine.id;
    let mut zero_sig = genuine.clone();
    zero_sig.sig = Signature::from_bytes([0; 64]);
    for forged in [&bad_id, &bad_sig, &other_id, &zero_sig] {
        assert_eq!(scene.hostile.send_forged_event(forged), 1);
    }
    scene
        .errors(4, "InvalidEvent", |e| {
            matches!(e, RelayError::InvalidEvent { .. })
        })
        .await;

    // The same content with a wrong signature, once the genuine event has been verified:
    // the verified-id memory must not vouch for a signature it never checked. The genuine
    // event reaches `feed` (it is not stored, so `second` gets no copy of it); then its
    // forged twin goes to both subscriptions.
    assert_eq!(scene.hostile.send_forged_event(&genuine), 1);
    let id = genuine.id;
    scene
        .inbox
        .expect(
            "the genuine event",
            move |m| matches!(&m.kind, MessageKind::Event { event, .. } if event.id == id),
        )
        .await;
    scene.subscribe("second").await;
    assert_eq!(scene.hostile.send_forged_event(&bad_sig), 2);
    scene
        .errors(
            2,
            "InvalidEvent for the forged twin",
            |e| matches!(e, RelayError::InvalidEvent { event_id, .. } if *event_id == id),
        )
        .await;
    let stats = scene.stats_of(&scene.hostile).await;
    assert_eq!(stats.events_invalid, 6, "{stats:?}");
    assert_eq!(stats.events_delivered, 1, "{stats:?}");
    scene.hostile_still_usable().await;
    scene.finish().await;
}

#[actix::test]
async fn a_frame_beyond_max_message_size_closes_the_socket_with_a_clear_reason() {
    let mut scene = Scene::start().await;
    let huge = format!(r#"["NOTICE","{}"]"#, "x".repeat(MAX_MESSAGE + 1));
    assert_eq!(scene.hostile.send_raw_text(&huge), 1);
    scene
        .errors(1, "MessageTooLarge", |e| {
            matches!(e, RelayError::MessageTooLarge { size, max } if *max == MAX_MESSAGE && *size > MAX_MESSAGE)
        })
        .await;
    let url = scene.hostile.url();
    let gone = scene.inbox.disconnected(&url).await;
    match gone.kind {
        MessageKind::Disconnected {
            reason: DisconnectReason::Error(text),
            next_retry: Some(_),
        } => assert!(text.contains(&MAX_MESSAGE.to_string()), "{text}"),
        other => panic!("unexpected {other:?}"),
    }
    scene.inbox.connected(&url).await;
    // A new socket, the subscription re-sent, and it works.
    let sub = "feed";
    scene
        .inbox
        .expect("EOSE on the new socket", |m| {
            m.relay.as_str() == url && matches!(&m.kind, MessageKind::Eose(s) if s.as_str() == sub)
        })
        .await;
    let url = scene.hostile.url();
    scene.round_trip(&url).await;
    assert!(scene
        .inbox
        .seen
        .iter()
        .all(|m| !matches!(&m.kind, MessageKind::Notice(n) if n.len() > MAX_MESSAGE)));
    scene.finish().await;
}

#[actix::test]
async fn thousands_of_notices_are_delivered_in_order() {
    const NOTICES: usize = 5_000;
    let mut scene = Scene::start().await;
    let before = scene.stats_of(&scene.hostile).await;
    for n in 0..NOTICES {
        scene
            .hostile
            .send_raw_text(&format!(r#"["NOTICE","notice {n}"]"#));
    }
    let last = format!("notice {}", NOTICES - 1);
    scene
        .inbox
        .expect(
            "the last notice",
            move |m| matches!(&m.kind, MessageKind::Notice(n) if *n == last),
        )
        .await;
    scene.inbox.drain();
    let notices: Vec<String> = scene
        .inbox
        .seen
        .iter()
        .filter_map(|m| match &m.kind {
            MessageKind::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..NOTICES).map(|n| format!("notice {n}")).collect();
    assert_eq!(notices, expected);
    let after = scene.stats_of(&scene.hostile).await;
    assert!(after.frames_in - before.frames_in >= NOTICES as u64);
    assert_eq!(after.errors, before.errors);
    scene.hostile_still_usable().await;
    scene.finish().await;
}

#[actix::test]
async fn an_ok_for_an_event_never_sent_is_reported_and_ignored() {
    let mut scene = Scene::start().await;
    let never_sent = EventBuilder::text_note("never sent").sign(&scene.keys).id;
    let unknown = EventId::from_bytes([7; 32]);
    for (id, accepted) in [(never_sent, true), (unknown, false)] {
        scene
            .hostile
            .send_raw_text(&format!(r#"["OK","{}",{accepted},""]"#, id.to_hex()));
    }
    scene
        .errors(2, "UnsolicitedOk", |e| {
            matches!(e, RelayError::UnsolicitedOk { .. })
        })
        .await;
    let stats = scene.stats_of(&scene.hostile).await;
    assert_eq!(stats.errors, 2);
    scene.hostile_still_usable().await;
    let url = scene.hostile.url();
    let oks: Vec<&RelayMessage> = scene
        .inbox
        .seen
        .iter()
        .filter(|m| m.relay.as_str() == url && matches!(m.kind, MessageKind::Ok { .. }))
        .collect();
    assert_eq!(oks.len(), 1, "only the round trip's own OK: {oks:?}");
    scene.finish().await;
}

#[actix::test]
async fn a_second_eose_is_reported_and_not_repeated() {
    let mut scene = Scene::start().await;
    scene.hostile.send_raw_text(r#"["EOSE","feed"]"#);
    scene.hostile.send_raw_text(r#"["EOSE","feed"]"#);
    scene
        .errors(2, "RepeatedEose", |e| {
            matches!(e, RelayError::RepeatedEose { subscription_id } if subscription_id.as_str() == "feed")
        })
        .await;
    let url = scene.hostile.url();
    let eoses = scene
        .inbox
        .seen
        .iter()
        .filter(|m| m.relay.as_str() == url && matches!(m.kind, MessageKind::Eose(_)))
        .count();
    assert_eq!(eoses, 1, "stored events end once per socket");
    let stats = scene.stats_of(&scene.hostile).await;
    assert_eq!(stats.errors, 2);
    scene.hostile_still_usable().await;
    scene.finish().await;
}

#[actix::test]
async fn auth_challenges_in_a_loop_are_answered_at_a_bounded_rate() {
    const CHALLENGES: usize = 1_000;
    let mut scene = Scene::start().await;
    let started = Instant::now();
    for n in 0..CHALLENGES {
        scene
            .hostile
            .send_raw_text(&format!(r#"["AUTH","challenge {n}"]"#));
    }
    let url = scene.hostile.url();
    let last = format!("challenge {}", CHALLENGES - 1);
    {
        let last = last.clone();
        let url = url.clone();
        scene
            .inbox
            .expect("every challenge reported", move |m| {
                m.relay.as_str() == url
                    && matches!(&m.kind, MessageKind::Auth { challenge } if *challenge == last)
            })
            .await;
    }
    // The latest challenge is answered (late), the flood in between is not.
    let answered = scene
        .hostile
        .wait_for_frame(
            |f| {
                matches!(&f.message, Ok(ClientMessage::Auth(e))
                    if e.tag_value("challenge") == Some(last.as_str()))
            },
            WAIT,
        )
        .await;
    assert!(answered.is_ok(), "the latest challenge was never answered");
    let elapsed = started.elapsed();
    let answers = scene
        .hostile
        .received()
        .iter()
        .filter(|f| f.verb() == Some("AUTH"))
        .count();
    // At most one answer per second of flood, and the first at once.
    let bound = 2 + elapsed.as_secs() as usize;
    assert!(
        answers <= bound,
        "{answers} AUTH answers to {CHALLENGES} challenges in {elapsed:?}"
    );
    let auths = scene
        .inbox
        .seen
        .iter()
        .filter(|m| m.relay.as_str() == url && matches!(m.kind, MessageKind::Auth { .. }))
        .count();
    assert_eq!(auths, CHALLENGES, "each challenge is reported");
    let stats = scene.stats_of(&scene.hostile).await;
    assert!(stats.frames_in >= CHALLENGES as u64, "{stats:?}");
    scene.hostile_still_usable().await;
    scene.finish().await;
}
