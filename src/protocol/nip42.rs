//! NIP-42: authentication of clients to relays.

use super::error::Error;
use super::event::Event;
use super::keys::{EventBuilder, Keys};
use super::kind::Kind;
use super::tag::Tag;
use super::timestamp::Timestamp;

/// Builds the signed kind-22242 event that answers `challenge` from the relay at `relay_url`:
/// tags `["relay", <url>]` and `["challenge", <challenge>]`, empty content.
///
/// ```
/// use actix_nostr::protocol::{nip42, Keys, Kind};
/// let keys = Keys::generate();
/// let auth = nip42::auth_event(&keys, "wss://relay.example.com/", "abc");
/// assert_eq!(auth.kind, Kind::AUTH);
/// assert!(nip42::check_auth_event(&auth, "wss://relay.example.com/", "abc", 600).is_ok());
/// ```
pub fn auth_event(keys: &Keys, relay_url: &str, challenge: &str) -> Event {
    EventBuilder::new(Kind::AUTH, "")
        .tag(Tag::new(["relay", relay_url]))
        .tag(Tag::new(["challenge", challenge]))
        .sign(keys)
}

/// Why a relay refuses an AUTH event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The id or signature is wrong.
    #[error("invalid: {0}")]
    Invalid(Error),
    /// Not kind 22242.
    #[error("invalid: not a kind 22242 event")]
    WrongKind,
    /// The `challenge` tag is missing or different.
    #[error("invalid: challenge does not match")]
    WrongChallenge,
    /// The `relay` tag is missing or names another relay.
    #[error("invalid: relay url does not match")]
    WrongRelay,
    /// `created_at` is further from now than the allowed window.
    #[error("invalid: created_at too far from now")]
    Stale,
}

/// What a relay checks (NIP-42): kind 22242, valid id and signature, matching `challenge`
/// tag, a `relay` tag naming this relay (compared after trimming one trailing `/` and
/// ignoring ASCII case of the scheme and host), and `created_at` within `window_secs` of now.
pub fn check_auth_event(
    event: &Event,
    relay_url: &str,
    challenge: &str,
    window_secs: u64,
) -> std::result::Result<(), AuthError> {
    if event.kind != Kind::AUTH {
        return Err(AuthError::WrongKind);
    }
    event.verify().map_err(AuthError::Invalid)?;
    if event.tag_value("challenge") != Some(challenge) {
        return Err(AuthError::WrongChallenge);
    }
    let same_relay = event
        .tag_value("relay")
        .is_some_and(|url| normalise(url) == normalise(relay_url));
    if !same_relay {
        return Err(AuthError::WrongRelay);
    }
    let now = Timestamp::now().as_secs();
    if event.created_at.as_secs().abs_diff(now) > window_secs {
        return Err(AuthError::Stale);
    }
    Ok(())
}

/// The relay URL as compared: surrounding whitespace and one trailing `/` removed, the
/// scheme and host (everything before the path) in ASCII lowercase. The path and query keep
/// their case: they are case-sensitive (RFC 3986), and one host may serve several relays.
fn normalise(url: &str) -> String {
    let url = url.trim();
    let url = url.strip_suffix('/').unwrap_or(url);
    let host_start = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| host_start + i);
    let (scheme_and_host, rest) = url.split_at(host_end);
    let mut out = scheme_and_host.to_ascii_lowercase();
    out.push_str(rest);
    out
}
