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

mod actor;
mod commands;
mod error;

pub use actor::{RelayPool, RelayPoolBuilder};
pub use commands::*;
pub use error::PoolError;
