//! NIP-19: bech32-encoded entities (`npub`, `nsec`, `note`, `nprofile`, `nevent`).
//! (stub, being written)

use super::error::{Error, Result};
use super::ids::PublicKey;

/// Encodes a public key as `npub1…`.
pub fn encode_npub(pk: &PublicKey) -> String {
    let _ = pk;
    String::new()
}

/// Encodes secret key bytes as `nsec1…`.
pub fn encode_nsec(sk: &[u8; 32]) -> String {
    let _ = sk;
    String::new()
}

/// Decodes `nsec1…` into the 32 secret-key bytes.
pub fn decode_nsec(s: &str) -> Result<[u8; 32]> {
    Err(Error::Nip19(s.to_owned()))
}
