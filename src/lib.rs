//! actix-nostr (being built).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod protocol;
