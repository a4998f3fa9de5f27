//! One relay connection: its URL, options, the actor that keeps it connected, and what it
//! tells the user.
//!
//! Users mostly meet this module through [`RelayMessage`] (what their actor receives),
//! [`RelayOptions`] (per-relay settings) and [`RelayUrl`].

mod auth;
mod backoff;
mod closing_sink;
mod commands;
mod connection;
mod deadlines;
mod dedup;
mod error;
mod framing;
mod message;
mod options;
mod outcome;
mod outlet;
mod requests;
mod socket;
mod stats;
mod status;
mod subscriptions;
mod url;

#[cfg(feature = "testing")]
pub use commands::ActorFault;
#[cfg(feature = "testing")]
pub(crate) use commands::InjectFault;
pub(crate) use commands::{CloseConnection, ReconnectNow, Send};
pub use connection::RelayConnection;
pub(crate) use connection::{ConnectionParts, RelayShared};
pub(crate) use dedup::Dedup;
pub use dedup::{DedupStats, Delivery, DEFAULT_DEDUP_CAPACITY};
pub use error::RelayError;
pub use message::{DisconnectReason, MessageKind, RelayMessage};
pub use options::*;
pub use outcome::{CountError, NotSentReason, PublishOutcome};
pub(crate) use outlet::{Forwarder, Outlet, SetRecipients};
pub(crate) use requests::{CloseSub, CountQuery, OpenSub, PublishEvent, PublishResponder};
pub use stats::{RelayStats, RelayStatsSnapshot};
pub use status::RelayState;
pub use subscriptions::FetchEnd;
pub(crate) use subscriptions::{FetchItem, SubTarget};
pub use url::{RelayUrl, UrlError};
