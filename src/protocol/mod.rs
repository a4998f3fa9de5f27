//! The Nostr protocol: wire types and cryptography, with no actors and no I/O.
//!
//! * [`Event`] and its parts ([`EventId`], [`PublicKey`], [`Signature`], [`Kind`], [`Tag`],
//!   [`Timestamp`]), id computation and BIP-340 verification ([`Event::verify`]);
//! * [`Keys`] and [`EventBuilder`] to sign events;
//! * [`Filter`] with NIP-01 matching;
//! * the messages a client sends ([`ClientMessage`]) and the messages a relay sends
//!   ([`RelayFrame`]), exactly as the JSON arrays of NIP-01, NIP-42 and NIP-45;
//! * [`nip11`] relay information, [`nip19`] bech32 entities, [`nip42`] authentication events;
//! * [`Reason`], the machine-readable prefix of `OK` and `CLOSED` messages.

mod error;
mod event;
mod event_scan;
mod filter;
mod hex;
mod ids;
mod keys;
mod kind;
mod message;
pub mod nip11;
pub mod nip19;
pub mod nip42;
mod reason;
mod tag;
mod timestamp;

pub use error::{Error, Result};
pub use event::Event;
pub use filter::Filter;
pub use hex::HexError;
pub use ids::{EventId, PublicKey, Signature};
pub use keys::{EventBuilder, Keys};
pub use kind::{Kind, KindRange};
pub(crate) use message::InboundFrame;
#[cfg(fuzzing)]
#[doc(hidden)]
pub use message::{serde_client_message, serde_relay_frame};
pub use message::{ClientMessage, CountResult, RelayFrame, SubscriptionId};
pub use reason::Reason;
pub use tag::Tag;
pub use timestamp::Timestamp;
