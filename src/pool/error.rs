//! Errors of pool requests.

use crate::relay::{RelayError, RelayUrl, UrlError};

/// Why a request to the [`RelayPool`](super::RelayPool) could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The relay URL is not a `ws://` or `wss://` URL.
    #[error(transparent)]
    InvalidUrl(#[from] UrlError),
    /// No relay with this URL is in the pool.
    #[error("relay {0} is not in the pool")]
    UnknownRelay(RelayUrl),
    /// The relay refused the request; see the inner error (for example a full queue).
    #[error("{relay}: {error}")]
    Relay {
        /// Which relay.
        relay: RelayUrl,
        /// What it said.
        error: RelayError,
    },
    /// The relay's connection actor could not be reached (it is being replaced after a
    /// crash); try again.
    #[error("relay {0} is restarting")]
    Unavailable(RelayUrl),
    /// No subscription with this id is open.
    #[error("no subscription {0}")]
    UnknownSubscription(crate::protocol::SubscriptionId),
    /// A subscription with this id is already open.
    #[error("subscription {0} already exists")]
    DuplicateSubscription(crate::protocol::SubscriptionId),
    /// The pool is shutting down.
    #[error("the pool is shutting down")]
    ShuttingDown,
}
