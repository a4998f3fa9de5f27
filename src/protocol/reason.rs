//! The machine-readable prefix of `OK` and `CLOSED` messages (NIP-01, NIP-42).

/// The prefix before the first `:` of an `OK` or `CLOSED` message, such as
/// `"blocked: you are banned"`.
///
/// ```
/// use actix_nostr::protocol::Reason;
/// assert_eq!(Reason::parse("rate-limited: slow down"), Reason::RateLimited);
/// assert_eq!(Reason::parse("auth-required: log in"), Reason::AuthRequired);
/// assert_eq!(Reason::parse(""), Reason::None);
/// assert_eq!(Reason::parse("custom: x"), Reason::Other("custom".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No prefix (empty message or no `:`).
    None,
    /// `duplicate:` — the relay already had the event (an accepted OK).
    Duplicate,
    /// `pow:` — proof of work.
    Pow,
    /// `blocked:` — the author or client is not allowed.
    Blocked,
    /// `rate-limited:` — too much, too fast.
    RateLimited,
    /// `invalid:` — the event or request is malformed.
    Invalid,
    /// `restricted:` — not allowed to write (or read) here.
    Restricted,
    /// `mute:` — an ephemeral event nobody listened to.
    Mute,
    /// `error:` — the relay failed.
    Error,
    /// `auth-required:` — authenticate first (NIP-42).
    AuthRequired,
    /// `unsupported:` — a feature the relay does not support.
    Unsupported,
    /// Any other prefix.
    Other(String),
}

impl Reason {
    /// Reads the prefix of a relay message.
    pub fn parse(message: &str) -> Reason {
        let Some((prefix, _)) = message.split_once(':') else {
            return Reason::None;
        };
        match prefix.trim() {
            "duplicate" => Reason::Duplicate,
            "pow" => Reason::Pow,
            "blocked" => Reason::Blocked,
            "rate-limited" => Reason::RateLimited,
            "invalid" => Reason::Invalid,
            "restricted" => Reason::Restricted,
            "mute" => Reason::Mute,
            "error" => Reason::Error,
            "auth-required" => Reason::AuthRequired,
            "unsupported" => Reason::Unsupported,
            other if !other.is_empty() && !other.contains(' ') => Reason::Other(other.to_owned()),
            _ => Reason::None,
        }
    }
}
