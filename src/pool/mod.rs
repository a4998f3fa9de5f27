//! The supervisor: [`RelayPool`] and the messages users send it.
//!
//! | message | reply |
//! |---|---|
//! | [`AddRelay`] | [`AddOutcome`] or [`PoolError::InvalidUrl`] |
//! | [`RemoveRelay`] | `()` or [`PoolError::UnknownRelay`] |
//! | [`ListRelays`] | a [`RelayInfo`] per relay |
//! | [`SendTo`] | sent or queued, or [`PoolError`] (queue full, unknown relay) |
//! | [`Broadcast`] | the outcome per relay |
//! | [`Reconnect`] | `()` or [`PoolError::UnknownRelay`] |
//! | [`Stats`] | [`PoolStats`]: per relay and totals |
//! | [`AddRecipient`], [`RemoveRecipient`] | whether the list changed |
//! | [`Shutdown`] | `()` once every close frame is flushed |
//! | [`Subscribe`] | the [`SubscriptionId`](crate::protocol::SubscriptionId) |
//! | [`Unsubscribe`] | `()` or [`PoolError::UnknownSubscription`] |
//! | [`Publish`] | [`PublishResult`]: each relay's [`PublishOutcome`](crate::relay::PublishOutcome) |
//! | [`Fetch`] | [`FetchResult`]: de-duplicated events and how each relay ended |
//! | [`Count`] | [`CountResults`]: each relay's count or error |

mod actor;
mod commands;
mod error;
mod requests;

pub use actor::{RelayPool, RelayPoolBuilder};
pub use commands::*;
pub use error::PoolError;
pub use requests::*;
