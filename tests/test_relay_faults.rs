//! `testing::TestRelay`'s faults (dropped, closed, silent, refusing, restarted relays, raw
//! frames) and its inspection helpers, driven by the plain awc WebSocket client of
//! tests/ws_client.
//!
//! Every wait is bounded by a timeout; nothing sleeps to synchronise. The checks that
//! something does *not* happen (a silent relay's missing pong) wait a short, fixed time.
#![cfg(feature = "testing")]

use std::time::{Duration, Instant};

use actix_nostr::protocol::{ClientMessage, Filter, Keys, Kind, RelayFrame};
use actix_nostr::testing::TestRelay;
use awc::ws::{CloseCode, Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};

mod ws_client;

use ws_client::*;

// ---- Faults -------------------------------------------------------------------

#[actix::test]
async fn drop_connections_ends_tcp_without_a_close_frame() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    relay.wait_for_connections(1, T).await.unwrap();
    assert_eq!(relay.drop_connections(), 1);
    match actix::clock::timeout(T, ws.next()).await {
        Ok(None) | Ok(Some(Err(_))) => {}
        other => panic!("expected the stream to end without a close frame, got {other:?}"),
    }
    relay.wait_for_connections(0, T).await.unwrap();
    // The relay still accepts new connections.
    let mut again = connect(&relay.url()).await;
    req(&mut again, "s", vec![Filter::new()]).await;
    assert_eq!(recv(&mut again).await, RelayFrame::Eose("s".into()));
    assert_eq!(relay.connections_total(), 2);
}

#[actix::test]
async fn close_connections_sends_the_code() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    relay.wait_for_connections(1, T).await.unwrap();
    assert_eq!(relay.close_connections(1012, "restarting"), 1);
    match next_frame(&mut ws).await {
        Some(Frame::Close(Some(reason))) => {
            assert_eq!(reason.code, CloseCode::Restart);
            assert_eq!(reason.description.as_deref(), Some("restarting"));
        }
        other => panic!("expected close 1012, got {other:?}"),
    }
    assert!(next_frame(&mut ws).await.is_none());
}

#[actix::test]
async fn silent_relay_keeps_tcp_open_but_answers_nothing() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    relay.wait_for_connections(1, T).await.unwrap();
    relay.set_silent(true);
    ws.send(Message::Ping("anyone?".into())).await.unwrap();
    req(&mut ws, "s", vec![Filter::new()]).await;
    relay.publish(note(&Keys::generate(), "not delivered"));
    expect_quiet(&mut ws).await;
    assert_eq!(relay.connections_now(), 1);
    assert_eq!(relay.received_count(), 0);

    relay.set_silent(false);
    // The frames that waited are read and answered now.
    assert_eq!(
        next_frame(&mut ws).await,
        Some(Frame::Pong("anyone?".into()))
    );
    assert!(matches!(recv(&mut ws).await, RelayFrame::Event { .. }));
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("s".into()));
}

#[actix::test]
async fn refusing_then_accepting_connections() {
    let relay = TestRelay::start().await.unwrap();
    relay.set_refusing(true);
    let Err(err) = try_connect(&relay.url()).await else {
        panic!("connected while refusing");
    };
    assert!(err.contains("503"), "{err}");
    assert_eq!(relay.refused_total(), 1);
    assert_eq!(relay.connections_total(), 0);
    relay.set_refusing(false);
    connect(&relay.url()).await;

    relay.refuse_for(Duration::from_secs(1));
    assert!(try_connect(&relay.url()).await.is_err());
    let started = Instant::now();
    loop {
        if try_connect(&relay.url()).await.is_ok() {
            break;
        }
        assert!(started.elapsed() < T, "still refused after {T:?}");
        actix::clock::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(relay.connections_total(), 2);
}

#[actix::test]
async fn restart_keeps_or_drops_events_on_the_same_port() {
    let mut relay = TestRelay::start().await.unwrap();
    let port = relay.port();
    let keys = Keys::generate();
    let mut ws = connect(&relay.url()).await;
    let kept = note(&keys, "kept");
    assert!(publish(&mut ws, &kept).await.0);

    relay.restart(true).await.unwrap();
    assert_eq!(relay.port(), port);
    assert_eq!(relay.connections_now(), 0);
    match actix::clock::timeout(T, ws.next()).await {
        Ok(None) | Ok(Some(Err(_))) => {}
        other => panic!("old connection should be dead, got {other:?}"),
    }
    let mut ws = connect(&relay.url()).await;
    req(&mut ws, "s", vec![Filter::new()]).await;
    assert_eq!(recv_event(&mut ws).await.1, kept);
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("s".into()));

    relay.restart(false).await.unwrap();
    assert!(relay.stored_events().is_empty());
    let mut ws = connect(&relay.url()).await;
    req(&mut ws, "s", vec![Filter::new()]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("s".into()));
    assert_eq!(relay.connections_total(), 3);
}

#[actix::test]
async fn dropping_the_handle_stops_the_server() {
    let relay = TestRelay::start().await.unwrap();
    let url = relay.url();
    let mut ws = connect(&url).await;
    drop(relay);
    match actix::clock::timeout(T, ws.next()).await {
        Ok(None) | Ok(Some(Err(_))) => {}
        other => panic!("the connection should be dead, got {other:?}"),
    }
    assert!(try_connect(&url).await.is_err());
}

#[actix::test]
async fn raw_text_and_binary_frames_reach_every_connection() {
    let relay = TestRelay::start().await.unwrap();
    let mut a = connect(&relay.url_for("/a")).await;
    let mut b = connect(&relay.url_for("/b")).await;
    relay.wait_for_connections(2, T).await.unwrap();
    assert_eq!(relay.send_raw_text("[\"garbage"), 2);
    assert_eq!(relay.send_raw_binary(&[0, 159, 146, 150]), 2);
    for ws in [&mut a, &mut b] {
        assert_eq!(next_frame(ws).await, Some(Frame::Text("[\"garbage".into())));
        assert_eq!(
            next_frame(ws).await,
            Some(Frame::Binary(vec![0u8, 159, 146, 150].into()))
        );
    }
}

#[actix::test]
async fn forged_event_goes_to_every_open_subscription() {
    let relay = TestRelay::start().await.unwrap();
    let mut ws = connect(&relay.url()).await;
    req(&mut ws, "x", vec![Filter::new().kind(Kind::REACTION)]).await;
    assert_eq!(recv(&mut ws).await, RelayFrame::Eose("x".into()));
    let mut forged = note(&Keys::generate(), "forged");
    forged.sig = note(&Keys::generate(), "other").sig;
    assert_eq!(relay.send_forged_event(&forged), 1);
    let (sub, got) = recv_event(&mut ws).await;
    assert_eq!(sub, "x");
    assert_eq!(got, forged);
    assert!(got.verify().is_err());
    assert!(relay.stored_events().is_empty());
}

// ---- Inspection -----------------------------------------------------------------

#[test]
fn the_handle_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TestRelay>();
}

#[actix::test]
async fn received_frames_connections_and_waits() {
    let relay = TestRelay::start().await.unwrap();
    let err = relay
        .wait_for_req("never", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never"), "{err}");
    assert!(relay
        .wait_for_connections(1, Duration::from_millis(50))
        .await
        .is_err());

    let mut one = connect(&relay.url_for("/x")).await;
    let mut two = connect(&relay.url_for("/x")).await;
    relay.wait_for_connections(2, T).await.unwrap();
    req(&mut two, "mine", vec![Filter::new().kind(Kind::TEXT_NOTE)]).await;
    let frame = relay.wait_for_req("mine", T).await.unwrap();
    assert_eq!(frame.path, "/x");
    assert_eq!(frame.verb(), Some("REQ"));
    assert_eq!(frame.text, r#"["REQ","mine",{"kinds":[1]}]"#);
    let conns = relay.connections();
    assert_eq!(frame.connection, conns[1].id);
    assert_eq!(conns[1].subscriptions, 1);

    let event = note(&Keys::generate(), "watched");
    send(&mut one, &ClientMessage::event(event.clone())).await;
    let seen = relay
        .wait_for_frame(|f| f.event().is_some_and(|e| e.id == event.id), T)
        .await
        .unwrap();
    assert_eq!(seen.connection, conns[0].id);
    relay
        .wait_until(|r| r.stored_events().len() == 1, T)
        .await
        .unwrap();

    drop(one);
    drop(two);
    relay.wait_for_connections(0, T).await.unwrap();
    assert_eq!(relay.connections_total(), 2);
    relay.wait_for_connections_total(2, T).await.unwrap();
    assert!(relay.open_subscriptions().is_empty());
}
