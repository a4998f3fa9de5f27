//! Relay URLs and their normal form.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Why a string is not a usable relay URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The string does not parse as a URL at all.
    #[error("{input:?} is not a URL: {reason}")]
    Invalid {
        /// What was given.
        input: String,
        /// What the URL parser said.
        reason: String,
    },
    /// The scheme is not `ws` or `wss`.
    #[error("{input:?}: relay URLs must use ws:// or wss://, not {scheme}://")]
    UnsupportedScheme {
        /// What was given.
        input: String,
        /// The scheme found.
        scheme: String,
    },
    /// No host name or address.
    #[error("{input:?} has no host")]
    MissingHost {
        /// What was given.
        input: String,
    },
}

/// A relay's WebSocket URL in normal form: one relay, one `RelayUrl`.
///
/// Normalising lower-cases the scheme and host, drops the default port (80 for `ws`, 443
/// for `wss`) and the fragment, and folds a trailing slash, so `wss://Relay.Example.com:443/`
/// and `wss://relay.example.com` are the same relay. Only `ws://` and `wss://` are accepted.
/// Cloning is cheap (a shared string).
///
/// ```
/// use actix_nostr::relay::RelayUrl;
/// let a: RelayUrl = "wss://Relay.Example.com:443/".parse()?;
/// let b: RelayUrl = "wss://relay.example.com".parse()?;
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "wss://relay.example.com");
/// assert!("https://relay.example.com".parse::<RelayUrl>().is_err());
/// # Ok::<(), actix_nostr::relay::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayUrl(Arc<str>);

impl RelayUrl {
    /// Parses and normalises a relay URL.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let mut url = url::Url::parse(input.trim()).map_err(|e| UrlError::Invalid {
            input: input.to_owned(),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "ws" | "wss" => {}
            other => {
                return Err(UrlError::UnsupportedScheme {
                    input: input.to_owned(),
                    scheme: other.to_owned(),
                })
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::MissingHost {
                input: input.to_owned(),
            });
        }
        // The url crate already lower-cases scheme and host and drops default ports for
        // ws/wss (they are "special" schemes in the WHATWG URL standard).
        url.set_fragment(None);
        let mut s = String::from(url);
        // Fold the trailing slash: of the root path, and of any other path.
        let path_end = s.find('?').unwrap_or(s.len());
        if s[..path_end].ends_with('/') {
            s.remove(path_end - 1);
        }
        Ok(RelayUrl(s.into()))
    }

    /// The normal form as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `wss://` (TLS) URL.
    pub fn is_secure(&self) -> bool {
        self.0.starts_with("wss:")
    }

    /// The `http(s)://` URL of the same relay, where NIP-11 documents are served.
    pub fn http_url(&self) -> String {
        if let Some(rest) = self.0.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if let Some(rest) = self.0.strip_prefix("ws://") {
            format!("http://{rest}")
        } else {
            self.0.to_string()
        }
    }
}

impl FromStr for RelayUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        RelayUrl::parse(s)
    }
}

impl TryFrom<&str> for RelayUrl {
    type Error = UrlError;
    fn try_from(s: &str) -> Result<Self, UrlError> {
        RelayUrl::parse(s)
    }
}

impl TryFrom<String> for RelayUrl {
    type Error = UrlError;
    fn try_from(s: String) -> Result<Self, UrlError> {
        RelayUrl::parse(&s)
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayUrl({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        RelayUrl::parse(s).expect("valid").to_string()
    }

    #[test]
    fn normalises() {
        assert_eq!(norm("wss://Relay.COM"), "wss://relay.com");
        assert_eq!(norm("wss://relay.com/"), "wss://relay.com");
        assert_eq!(norm("WSS://relay.com:443/"), "wss://relay.com");
        assert_eq!(norm("ws://relay.com:80"), "ws://relay.com");
        assert_eq!(norm("ws://relay.com:8080/"), "ws://relay.com:8080");
        assert_eq!(norm("ws://127.0.0.1:7000/a/"), "ws://127.0.0.1:7000/a");
        assert_eq!(norm("wss://relay.com/Path"), "wss://relay.com/Path");
        assert_eq!(norm("wss://relay.com/?x=1#frag"), "wss://relay.com?x=1");
        assert_eq!(norm("  wss://relay.com  "), "wss://relay.com");
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            RelayUrl::parse("https://relay.com"),
            Err(UrlError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            RelayUrl::parse("relay.com"),
            Err(UrlError::Invalid { .. })
        ));
        assert!(RelayUrl::parse("").is_err());
        assert!(RelayUrl::parse("wss://").is_err());
        assert!(RelayUrl::parse("ws://exa mple.com").is_err());
    }

    #[test]
    fn http_url() {
        assert_eq!(
            RelayUrl::parse("wss://relay.com/x")
                .expect("valid")
                .http_url(),
            "https://relay.com/x"
        );
    }
}
