//! A plain awc WebSocket client for the `TestRelay` tests (not the crate's pool): connect,
//! send, and bounded waits for the relay's answers. Every wait is bounded by [`T`]; the few
//! checks that something does *not* happen wait [`QUIET`].
#![allow(dead_code)]

use std::time::Duration;

use actix_codec::Framed;
use actix_nostr::protocol::{
    ClientMessage, Event, EventBuilder, EventId, Filter, Keys, Kind, RelayFrame, Timestamp,
};
use awc::ws::{Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt as _, StreamExt as _};

pub type Ws = Framed<BoxedSocket, awc::ws::Codec>;

/// Bound of every wait for something that must happen.
pub const T: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub async fn try_connect(url: &str) -> Result<Ws, String> {
    let client = awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .finish();
    let connect = client.ws(url).max_frame_size(32 << 20).connect();
    match actix::clock::timeout(T, connect).await {
        Ok(Ok((_, ws))) => Ok(ws),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("connect timed out".to_owned()),
    }
}

pub async fn connect(url: &str) -> Ws {
    try_connect(url).await.expect("connects")
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_owned().into()))
        .await
        .expect("sends");
}

pub async fn send(ws: &mut Ws, msg: &ClientMessage) {
    send_text(ws, &msg.as_json()).await;
}

pub async fn req(ws: &mut Ws, sub: &str, filters: Vec<Filter>) {
    send(ws, &ClientMessage::req(sub.into(), filters)).await;
}

/// The next frame (None: the stream ended); panics after [`T`].
pub async fn next_frame(ws: &mut Ws) -> Option<Frame> {
    match actix::clock::timeout(T, ws.next()).await {
        Ok(Some(Ok(frame))) => Some(frame),
        Ok(Some(Err(e))) => panic!("protocol error: {e}"),
        Ok(None) => None,
        Err(_) => panic!("no frame within {T:?}"),
    }
}

/// The next frame, which must be a text frame holding a relay message.
pub async fn recv(ws: &mut Ws) -> RelayFrame {
    match next_frame(ws).await {
        Some(Frame::Text(text)) => RelayFrame::from_slice(&text).expect("a relay message"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub async fn recv_ok(ws: &mut Ws) -> (EventId, bool, String) {
    match recv(ws).await {
        RelayFrame::Ok {
            event_id,
            accepted,
            message,
        } => (event_id, accepted, message),
        other => panic!("expected OK, got {other:?}"),
    }
}

pub async fn recv_event(ws: &mut Ws) -> (String, Event) {
    match recv(ws).await {
        RelayFrame::Event {
            subscription_id,
            event,
        } => (subscription_id.to_string(), *event),
        other => panic!("expected EVENT, got {other:?}"),
    }
}

pub async fn recv_closed(ws: &mut Ws) -> (String, String) {
    match recv(ws).await {
        RelayFrame::Closed {
            subscription_id,
            message,
        } => (subscription_id.to_string(), message),
        other => panic!("expected CLOSED, got {other:?}"),
    }
}

/// Asserts that nothing arrives for [`QUIET`].
pub async fn expect_quiet(ws: &mut Ws) {
    if let Ok(frame) = actix::clock::timeout(QUIET, ws.next()).await {
        panic!("expected nothing, got {frame:?}");
    }
}

/// Publishes and expects `OK`; returns its acceptance and message.
pub async fn publish(ws: &mut Ws, event: &Event) -> (bool, String) {
    send(ws, &ClientMessage::event(event.clone())).await;
    let (id, accepted, message) = recv_ok(ws).await;
    assert_eq!(id, event.id);
    (accepted, message)
}

pub fn note_at(keys: &Keys, kind: u16, at: u64, content: &str) -> Event {
    EventBuilder::new(Kind::new(kind), content)
        .created_at(Timestamp::from_secs(at))
        .sign(keys)
}

pub fn note(keys: &Keys, content: &str) -> Event {
    EventBuilder::text_note(content).sign(keys)
}
