//! One relay connection: its URL, options, the actor that keeps it connected, and what it
//! tells the user.
//!
//! Users mostly meet this module through [`RelayMessage`] (what their actor receives),
//! [`RelayOptions`] (per-relay settings) and [`RelayUrl`].

mod backoff;
mod connection;
mod error;
mod message;
mod options;
mod stats;
mod status;
mod url;

#[cfg(feature = "testing")]
pub use connection::ActorFault;
#[cfg(feature = "testing")]
pub(crate) use connection::InjectFault;
pub use connection::RelayConnection;
pub(crate) use connection::{ReconnectNow, RelayShared, Send, Shutdown};
pub use error::RelayError;
pub use message::{DisconnectReason, MessageKind, RelayMessage};
pub use options::*;
pub use stats::{RelayStats, RelayStatsSnapshot};
pub use status::RelayState;
pub use url::{RelayUrl, UrlError};
