//! [`TestRelay`]: a real Nostr relay inside the test process, with fault injection
//! (cargo feature `testing`).
//!
//! The relay listens on `ws://127.0.0.1:PORT` with a port chosen by the OS, on threads of
//! its own (an actix-web server with actix-web-actors sessions), so it serves clients
//! running under `#[actix::test]` or any other runtime. It speaks the part of Nostr a client
//! needs:
//!
//! * NIP-01: an in-memory store; EVENT verified (id and signature) and answered with `OK`
//!   (`true`, `true "duplicate: …"`, `false "invalid: …"` or a policy's `"blocked: …"`);
//!   REQ answered with stored matches newest first, `limit` per filter, then `EOSE`, then
//!   live matches; several subscriptions per connection; CLOSE; a REQ with an open id
//!   replaces it; replaceable, ephemeral and addressable kinds;
//! * NIP-42 authentication (option), NIP-45 `COUNT`;
//! * limits on message size, subscriptions and filters; pings answered, clients optionally
//!   pinged.
//!
//! Any path is a relay: `ws://127.0.0.1:PORT/a` and `/b` are two distinct relays with two
//! stores (unless [`TestRelayBuilder::shared_store`]), so one server can stand in for many.
//!
//! Tests drive faults from the handle: drop every connection, close with a code, go silent
//! (half-open), refuse connections for a while, restart on the same port, send raw frames
//! or forged events, delay answers, never send EOSE or OK. They inspect what the relay saw
//! ([`TestRelay::received`], [`TestRelay::open_subscriptions`], connection counts, stored
//! events) and await conditions with a timeout instead of sleeping
//! ([`TestRelay::wait_for_req`], [`TestRelay::wait_until`], …).
//!
//! # Example
//!
//! A plain awc WebSocket client against the relay (with the crate's pool, a test looks the
//! same: point it at [`TestRelay::url`]):
//!
//! ```
//! use std::time::Duration;
//!
//! use actix_nostr::protocol::{ClientMessage, EventBuilder, Filter, Keys, Kind, RelayFrame};
//! use actix_nostr::testing::TestRelay;
//! use futures_util::{SinkExt as _, StreamExt as _};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # actix::System::new().block_on(async {
//! let relay = TestRelay::start().await?;
//! let note = EventBuilder::text_note("hello").sign(&Keys::generate());
//! relay.publish(note.clone());
//!
//! let (_, mut ws) = awc::Client::new().ws(relay.url()).connect().await?;
//! let req = ClientMessage::req("feed".into(), vec![Filter::new().kind(Kind::TEXT_NOTE)]);
//! ws.send(awc::ws::Message::Text(req.as_json().into())).await?;
//!
//! // The relay saw the REQ (no sleeping: the wait ends as soon as it arrives).
//! relay.wait_for_req("feed", Duration::from_secs(5)).await?;
//! assert_eq!(relay.open_subscriptions().len(), 1);
//!
//! // The stored note, then EOSE.
//! let mut frames = Vec::new();
//! while frames.len() < 2 {
//!     let frame = actix::clock::timeout(Duration::from_secs(5), ws.next()).await?;
//!     if let Some(Ok(awc::ws::Frame::Text(text))) = frame {
//!         frames.push(RelayFrame::from_slice(&text)?);
//!     }
//! }
//! assert!(matches!(&frames[0], RelayFrame::Event { event, .. } if event.id == note.id));
//! assert_eq!(frames[1], RelayFrame::Eose("feed".into()));
//!
//! // Faults: the relay drops the connection without a close frame.
//! relay.drop_connections();
//! relay.wait_for_connections(0, Duration::from_secs(5)).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # Threads
//!
//! The handle is `Send` and `Sync`; its methods are synchronous except the waits and
//! [`TestRelay::restart`]. The waits need a runtime with a timer (any actix `System` or
//! tokio runtime) and never message the relay's threads, so they work from a test running
//! in a different `System` than the relay's.

mod builder;
mod inspect;
mod relay;
mod server;
mod session;
mod state;
mod store;

pub use builder::{
    TestRelayBuilder, DEFAULT_MAX_FILTERS, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_SUBSCRIPTIONS,
};
pub use inspect::{ConnectionId, ConnectionInfo, OpenSubscription, ReceivedFrame, WaitTimeout};
pub use relay::TestRelay;
