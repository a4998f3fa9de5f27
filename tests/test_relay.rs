//! `testing::TestRelay` driven by a plain awc WebSocket client (not the crate's pool): every
//! message form and every option. Its faults and inspection helpers are in
//! tests/test_relay_faults.rs; the client is tests/ws_client.
//!
//! Every wait is bounded by a timeout; nothing sleeps to synchronise. The few checks that
//! something does *not* happen (a silent relay's missing pong, a never-sent EOSE) wait a
//! short, fixed time for it.
#![cfg(feature = "testing")]

use std::time::{Duration, Instant};

use actix_nostr::protocol::{
    nip42, ClientMessage, CountResult, EventBuilder, Filter, Keys, Kind, RelayFrame,
    SubscriptionId, Tag, Timestamp,
};
use actix_nostr::testing::TestRelay;
use awc::ws::{CloseCode, Frame, Message};
use futures_util::SinkExt as _;

mod ws_client;

use ws_client::*;

// ---- NIP-01 messages --------------------------------------------------------

#[actix::test]
async fn event_is_accepted_then_reported_duplicate() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    let event = note(&Keys::generate(), "hello");
    assert_eq!(publish(&mut ws, &event).await, (true, String::new()));
    let dup = publish(&mut ws, &event).await;
    assert_eq!(dup, (true, "duplicate: already have this event".to_owned()));
    assert_eq!(relay.stored_events(), vec![event]);
}

#[actix::test]
async fn event_with_bad_id_or_signature_is_invalid() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    let keys = Keys::generate();
    let mut tampered = note(&keys, "original");
    tampered.content = "changed".to_owned();
    let (accepted, message) = publish(&mut ws, &tampered).await;
    assert!(!accepted);
    assert!(message.starts_with("invalid: "), "{message}");

    let mut bad_sig = note(&keys, "a");
    bad_sig.sig = note(&keys, "b").sig;
    let (accepted, message) = publish(&mut ws, &bad_sig).await;
    assert!(!accepted && message.starts_with("invalid: "), "{message}");
    assert!(relay.stored_events().is_empty());
}

#[actix::test]
async fn req_answers_stored_then_eose_then_live() {
    let relay = TestRelay::start().await.unwrap();
    let keys = Keys::generate();
    let stored = note(&keys, "stored");
    relay.publish(stored.clone());

    let mut reader = connect(&relay.url()).await;
    req(&mut reader, "s", vec![Filter::new().kind(Kind::TEXT_NOTE)]).await;
    assert_eq!(recv_event(&mut reader).await, ("s".to_owned(), stored));
    assert_eq!(recv(&mut reader).await, RelayFrame::Eose("s".into()));

    let mut writer = connect(&relay.url()).await;
    let live = note(&keys, "live");
    assert!(publish(&mut writer, &live).await.0);
    assert_eq!(recv_event(&mut reader).await, ("s".to_owned(), live));
    // Non-matching events are not sent.
    publish(&mut writer, &note_at(&keys, 7, 1, "+")).await;
    expect_quiet(&mut reader).await;
}

#[actix::test]
async fn req_honours_limit_newest_first_and_dedups_filters() {
    let relay = TestRelay::start().await.unwrap();
    let keys = Keys::generate();
    for at in 1..=5 {
        relay.publish(note_at(&keys, 1, at, &format!("n{at}")));
    }
    let mut ws = connect(&relay.url()).await;
    req(
        &mut ws,
        "l",
        vec![Filter::new().limit(3), Filter::new().limit(2)],
    )
    .await;
    for expected in ["n5", "n4", "n3"] {
        assert_eq!(recv_event(&mut ws).await.1.content, expected);
    }
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("l".into()));
    req(&mut ws, "zero", vec![Filter::new().limit(0)]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("zero".into()));
}

#[actix::test]
async fn several_subscriptions_close_and_replacement() {
    let relay = TestRelay::start().await.unwrap();
    let keys = Keys::generate();
    let mut ws = connect(&relay.url()).await;
    req(&mut ws, "a", vec![Filter::new().kind(Kind::TEXT_NOTE)]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("a".into()));
    req(&mut ws, "b", vec![Filter::new().author(keys.public_key())]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("b".into()));
    assert_eq!(relay.open_subscriptions().len(), 2);

    relay.publish(note(&keys, "both"));
    let mut subs = vec![recv_event(&mut ws).await.0, recv_event(&mut ws).await.0];
    subs.sort();
    assert_eq!(subs, ["a", "b"]);

    send(&mut ws, &ClientMessage::Close("a".into())).await;
    relay.wait_for_close("a", T).await.unwrap();
    relay.publish(note(&keys, "only b"));
    assert_eq!(recv_event(&mut ws).await.0, "b");

    // The same id again replaces "b": now only reactions match.
    let cursor = relay.received_count();
    req(&mut ws, "b", vec![Filter::new().kind(Kind::REACTION)]).await;
    relay
        .wait_for_frame_after(cursor, |f| f.is_req("b"), T)
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("b".into()));
    let open = relay.open_subscriptions();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].filters, vec![Filter::new().kind(Kind::REACTION)]);
    relay.publish(note(&keys, "a note"));
    relay.publish(note_at(&keys, 7, 9, "+"));
    assert_eq!(recv_event(&mut ws).await.1.content, "+");
}

#[actix::test]
async fn count_answers_nip45() {
    let relay = TestRelay::start().await.unwrap();
    let keys = Keys::generate();
    for i in 0..3 {
        relay.publish(note(&keys, &format!("{i}")));
    }
    relay.publish(note_at(&keys, 7, 1, "+"));
    let mut ws = connect(&relay.url()).await;
    send_text(
        &mut ws,
        r#"["COUNT","c",{"kinds":[1]},{"kinds":[7],"limit":0}]"#,
    )
    .await;
    let expected = RelayFrame::Count {
        subscription_id: "c".into(),
        result: CountResult {
            count: 4,
            approximate: false,
        },
    };
    assert_eq!(recv(&mut ws).await, expected);
}

#[actix::test]
async fn replaceable_addressable_and_ephemeral_kinds() {
    let relay = TestRelay::start().await.unwrap();
    let keys = Keys::generate();
    let mut ws = connect(&relay.url()).await;
    let old = note_at(&keys, 0, 10, "old profile");
    let new = note_at(&keys, 0, 20, "new profile");
    assert!(publish(&mut ws, &new).await.0);
    assert_eq!(
        publish(&mut ws, &old).await,
        (false, "replaced: have newer event".to_owned())
    );
    let d = |v: &str, at: u64, c: &str| {
        EventBuilder::new(Kind::new(30023), c)
            .tag(Tag::identifier(v))
            .created_at(Timestamp::from_secs(at))
            .sign(&keys)
    };
    assert!(publish(&mut ws, &d("x", 1, "x1")).await.0);
    assert!(publish(&mut ws, &d("y", 1, "y1")).await.0);
    assert!(publish(&mut ws, &d("x", 2, "x2")).await.0);
    let mut contents: Vec<String> = relay
        .stored_events()
        .into_iter()
        .map(|e| e.content)
        .collect();
    contents.sort();
    assert_eq!(contents, ["new profile", "x2", "y1"]);

    // Ephemeral: forwarded live, never stored.
    req(&mut ws, "eph", vec![Filter::new().kind(Kind::new(20001))]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("eph".into()));
    let mut writer = connect(&relay.url()).await;
    let typing = note_at(&keys, 20001, 5, "typing");
    assert!(publish(&mut writer, &typing).await.0);
    assert_eq!(recv_event(&mut ws).await.1, typing);
    assert_eq!(relay.stored_events().len(), 3);
}

#[actix::test]
async fn bad_frames_get_a_notice_and_the_connection_stays() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    for bad in [
        "not json",
        "{}",
        r#"["REQ"]"#,
        r#"["WAT",1]"#,
        r#"["EVENT",{"id":1}]"#,
    ] {
        send_text(&mut ws, bad).await;
        match recv(&mut ws).await {
            RelayFrame::Notice(m) => assert!(m.starts_with("error: "), "{m}"),
            other => panic!("expected NOTICE, got {other:?}"),
        }
    }
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    assert!(matches!(recv(&mut ws).await, RelayFrame::Notice(_)));
    let frames = relay.received();
    assert_eq!(frames.len(), 6);
    assert!(frames.iter().all(|f| f.message.is_err()));
    assert!(frames[5].binary);
    // Still answering.
    req(&mut ws, "s", vec![Filter::new()]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("s".into()));
}

#[actix::test]
async fn ping_is_answered_with_the_same_payload_and_close_with_close() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    ws.send(Message::Ping("hi".into())).await.unwrap();
    assert_eq!(next_frame(&mut ws).await, Some(Frame::Pong("hi".into())));
    ws.send(Message::Close(Some(CloseCode::Normal.into())))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut ws).await,
        Some(Frame::Close(Some(CloseCode::Normal.into())))
    );
    relay.wait_for_connections(0, T).await.unwrap();
}

#[actix::test]
async fn fragmented_messages_are_reassembled() {
    use actix_http::ws::Item;
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    let event = note(&Keys::generate(), "in pieces");
    let json = ClientMessage::event(event.clone()).as_json();
    let (first, rest) = json.split_at(10);
    let (middle, last) = rest.split_at(20);
    let piece = |s: &str| bytes::Bytes::copy_from_slice(s.as_bytes());
    for item in [
        Item::FirstText(piece(first)),
        Item::Continue(piece(middle)),
        Item::Last(piece(last)),
    ] {
        ws.send(Message::Continuation(item)).await.unwrap();
    }
    assert_eq!(recv_ok(&mut ws).await, (event.id, true, String::new()));
    assert_eq!(relay.received()[0].text, json);
}

#[actix::test]
async fn a_one_mib_event_goes_in_and_out_whole() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    let big = note(&Keys::generate(), &"x".repeat(1 << 20));
    assert_eq!(publish(&mut ws, &big).await, (true, String::new()));
    req(&mut ws, "big", vec![Filter::new().id(big.id)]).await;
    let (_, got) = recv_event(&mut ws).await;
    got.verify().unwrap();
    assert_eq!(got, big);
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("big".into()));
}

// ---- Options ------------------------------------------------------------------

#[actix::test]
async fn auth_required_gates_req_and_event_until_a_valid_auth() {
    let relay = TestRelay::builder()
        .auth_required(true)
        .start()
        .await
        .unwrap();
    let url = relay.url_for("/private");
    let mut ws = connect(&url).await;
    let RelayFrame::Auth { challenge } = recv(&mut ws).await else {
        panic!("expected an AUTH challenge first");
    };
    let keys = Keys::generate();

    req(&mut ws, "s", vec![Filter::new()]).await;
    let (sub, message) = recv_closed(&mut ws).await;
    assert_eq!(sub, "s");
    assert!(message.starts_with("auth-required: "), "{message}");
    let (accepted, message) = publish(&mut ws, &note(&keys, "hi")).await;
    assert!(
        !accepted && message.starts_with("auth-required: "),
        "{message}"
    );
    send_text(&mut ws, r#"["COUNT","c",{}]"#).await;
    assert!(recv_closed(&mut ws).await.1.starts_with("auth-required: "));

    for wrong in [
        nip42::auth_event(&keys, &url, "not the challenge"),
        nip42::auth_event(&keys, &relay.url_for("/other"), &challenge),
    ] {
        send(&mut ws, &ClientMessage::Auth(Box::new(wrong))).await;
        let (_, accepted, message) = recv_ok(&mut ws).await;
        assert!(!accepted && message.starts_with("invalid: "), "{message}");
    }
    let auth = nip42::auth_event(&keys, &url, &challenge);
    send(&mut ws, &ClientMessage::Auth(Box::new(auth.clone()))).await;
    assert_eq!(recv_ok(&mut ws).await, (auth.id, true, String::new()));
    assert_eq!(
        relay.connections()[0].authenticated,
        Some(keys.public_key())
    );

    assert!(publish(&mut ws, &note(&keys, "hi")).await.0);
    req(&mut ws, "s", vec![Filter::new()]).await;
    assert_eq!(recv_event(&mut ws).await.1.content, "hi");
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("s".into()));
    // The AUTH event itself is neither stored nor broadcast.
    assert_eq!(relay.stored_events().len(), 1);
}

#[actix::test]
async fn subscription_and_filter_limits() {
    let relay = TestRelay::builder()
        .max_subscriptions(2)
        .max_filters(2)
        .start()
        .await
        .unwrap();
    let mut ws = connect(&relay.url()).await;
    for sub in ["a", "b"] {
        req(&mut ws, sub, vec![Filter::new()]).await;
        assert_eq!(recv(&mut ws).await, RelayFrame::Eose(sub.into()));
    }
    req(&mut ws, "c", vec![Filter::new()]).await;
    assert_eq!(
        recv_closed(&mut ws).await,
        ("c".to_owned(), "error: too many subscriptions".to_owned())
    );
    // Replacing an open one is fine.
    req(&mut ws, "a", vec![Filter::new().kind(Kind::TEXT_NOTE)]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("a".into()));
    req(
        &mut ws,
        "b",
        vec![Filter::new(), Filter::new(), Filter::new()],
    )
    .await;
    assert_eq!(
        recv_closed(&mut ws).await,
        ("b".to_owned(), "error: too many filters".to_owned())
    );
    let open: Vec<SubscriptionId> = relay
        .open_subscriptions()
        .into_iter()
        .map(|s| s.subscription_id)
        .collect();
    assert_eq!(open, vec![SubscriptionId::from("a")]);
}

#[actix::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let relay = TestRelay::builder()
        .max_message_size(1024)
        .start()
        .await
        .unwrap();
    let mut ws = connect(&relay.url()).await;
    publish(&mut ws, &note(&Keys::generate(), "small")).await;
    send(
        &mut ws,
        &ClientMessage::event(note(&Keys::generate(), &"x".repeat(2000))),
    )
    .await;
    assert!(matches!(recv(&mut ws).await, RelayFrame::Notice(m) if m.starts_with("error: ")));
    match next_frame(&mut ws).await {
        Some(Frame::Close(Some(reason))) => assert_eq!(reason.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert!(next_frame(&mut ws).await.is_none());
}

#[actix::test]
async fn event_policy_refuses_with_its_message_and_can_change() {
    let relay = TestRelay::builder()
        .event_policy(|e| {
            if e.content.contains("spam") {
                Err("blocked: no spam".to_owned())
            } else {
                Ok(())
            }
        })
        .start()
        .await
        .unwrap();
    let keys = Keys::generate();
    let mut ws = connect(&relay.url()).await;
    let blocked = publish(&mut ws, &note(&keys, "buy spam")).await;
    assert_eq!(blocked, (false, "blocked: no spam".to_owned()));
    assert!(publish(&mut ws, &note(&keys, "fine")).await.0);
    relay.set_event_policy(|_| Err("rate-limited: slow down".to_owned()));
    let limited = publish(&mut ws, &note(&keys, "again")).await;
    assert_eq!(limited, (false, "rate-limited: slow down".to_owned()));
    relay.clear_event_policy();
    assert!(publish(&mut ws, &note(&keys, "spam is fine now")).await.0);
    assert_eq!(relay.stored_events().len(), 2);
}

#[actix::test]
async fn never_eose_and_never_ok() {
    let relay = TestRelay::builder()
        .never_eose(true)
        .never_ok(true)
        .start()
        .await
        .unwrap();
    let keys = Keys::generate();
    relay.publish(note(&keys, "stored"));
    let mut ws = connect(&relay.url()).await;
    req(&mut ws, "s", vec![Filter::new()]).await;
    assert_eq!(recv_event(&mut ws).await.1.content, "stored");
    let live = note(&keys, "live");
    send(&mut ws, &ClientMessage::event(live.clone())).await;
    // No EOSE before the live event and no OK after it: the event frame comes next.
    assert_eq!(recv_event(&mut ws).await.1, live);
    expect_quiet(&mut ws).await;
    relay.set_never_ok(false);
    relay.set_never_eose(false);
    assert!(publish(&mut ws, &note(&keys, "ok again")).await.0);
    assert!(matches!(recv(&mut ws).await, RelayFrame::Event { .. }));
    req(&mut ws, "t", vec![Filter::new().limit(0)]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("t".into()));
}

#[actix::test]
async fn delay_holds_every_answer_back_in_order() {
    let delay = Duration::from_millis(500);
    let relay = TestRelay::builder().delay(delay).start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    let event = note(&Keys::generate(), "slow");
    let sent = Instant::now();
    send(&mut ws, &ClientMessage::event(event.clone())).await;
    req(&mut ws, "s", vec![Filter::new()]).await;
    assert_eq!(recv_ok(&mut ws).await.0, event.id);
    assert!(sent.elapsed() >= delay, "{:?}", sent.elapsed());
    assert_eq!(recv_event(&mut ws).await.1, event);
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("s".into()));
    relay.set_delay(Duration::ZERO);
    let sent = Instant::now();
    ws.send(Message::Ping("p".into())).await.unwrap();
    assert_eq!(next_frame(&mut ws).await, Some(Frame::Pong("p".into())));
    assert!(sent.elapsed() < delay);
}

#[actix::test]
async fn each_path_is_a_relay_unless_the_store_is_shared() {
    let keys = Keys::generate();
    let relay = TestRelay::start().await.unwrap();
    let mut a = connect(&relay.url_for("/a")).await;
    let mut b = connect(&relay.url_for("/b")).await;
    req(&mut b, "s", vec![Filter::new()]).await;
    assert_eq!(recv(&mut b).await, RelayFrame::Eose("s".into()));
    let event = note(&keys, "on a");
    assert!(publish(&mut a, &event).await.0);
    expect_quiet(&mut b).await;
    assert_eq!(relay.stored_events_at("/a"), vec![event.clone()]);
    assert!(relay.stored_events_at("/b").is_empty());
    assert_eq!(relay.connections_now_at("/a"), 1);
    assert_eq!(relay.connections_total_at("b"), 1);

    let shared = TestRelay::builder()
        .shared_store(true)
        .start()
        .await
        .unwrap();
    let mut a = connect(&shared.url_for("/a")).await;
    let mut b = connect(&shared.url_for("/b")).await;
    req(&mut b, "s", vec![Filter::new()]).await;
    assert_eq!(recv(&mut b).await, RelayFrame::Eose("s".into()));
    assert!(publish(&mut a, &event).await.0);
    assert_eq!(recv_event(&mut b).await.1, event);
    assert_eq!(shared.stored_events_at("/b"), vec![event]);
}

#[actix::test]
async fn relay_pings_clients_when_asked() {
    let relay = TestRelay::builder()
        .ping_clients(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let mut ws = connect(&relay.url()).await;
    assert!(matches!(next_frame(&mut ws).await, Some(Frame::Ping(_))));
}
