//! # actix-nostr
//!
//! A supervised pool of [Nostr](https://github.com/nostr-protocol/nips) relay connections
//! for the [actix](https://docs.rs/actix) actor system: the Rust, actix-native counterpart of
//! Elixir's GenNostr.
//!
//! A supervisor actor, `RelayPool`, starts one `RelayConnection` actor per relay URL; each
//! connection speaks the Nostr protocol over an awc WebSocket and forwards typed messages to
//! your actor through `Recipient` handles. You add and remove relays, subscribe, publish and
//! fetch by sending actor messages.
//!
//! # Layout
//!
//! The modules are the layers; each one uses only those listed before it.
//!
//! * [`protocol`] — Nostr wire types and cryptography, no actors and no I/O: [`protocol::Event`],
//!   [`protocol::Filter`], [`protocol::ClientMessage`], [`protocol::RelayFrame`],
//!   [`protocol::Keys`], NIP-19 and NIP-42 helpers.
//! * `relay` — one relay connection: URL normalisation, options, the connection actor.
//! * `pool` — the supervisor: the `RelayPool` actor and the messages users send it.
//! * `testing` (cargo feature `testing`) — `TestRelay`, a real relay on 127.0.0.1 with fault
//!   injection, for your tests and ours.
//!
//! # Quick start: the protocol layer
//!
//! ```
//! use actix_nostr::protocol::{ClientMessage, EventBuilder, Filter, Keys, Kind, RelayFrame};
//!
//! let keys = Keys::generate();
//! let note = EventBuilder::text_note("hello nostr").sign(&keys);
//! note.verify()?;
//!
//! let req = ClientMessage::req("feed".into(), vec![Filter::new().kind(Kind::TEXT_NOTE)]);
//! assert_eq!(req.as_json(), r#"["REQ","feed",{"kinds":[1]}]"#);
//!
//! let frame = RelayFrame::from_json(r#"["EOSE","feed"]"#)?;
//! assert_eq!(frame, RelayFrame::Eose("feed".into()));
//! # Ok::<(), actix_nostr::protocol::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod pool;
pub mod protocol;
pub mod relay;

/// The types most programs need.
pub mod prelude {
    pub use crate::protocol::{
        ClientMessage, Event, EventBuilder, EventId, Filter, Keys, Kind, PublicKey, RelayFrame,
        SubscriptionId, Tag, Timestamp,
    };
}
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// The rustls this crate is built with, for
/// [`RelayOptions::tls_config`](relay::RelayOptions::tls_config): a configuration must come
/// from the same version.
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use rustls;
