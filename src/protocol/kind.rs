//! Event kinds and their NIP-01 ranges.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An event kind: an integer from 0 to 65535 (NIP-01).
///
/// ```
/// use actix_nostr::protocol::Kind;
/// assert!(Kind::TEXT_NOTE.is_regular());
/// assert!(Kind::METADATA.is_replaceable());
/// assert!(Kind::new(20001).is_ephemeral());
/// assert!(Kind::new(30023).is_addressable());
/// assert_eq!(format!("{:>5}|", Kind::TEXT_NOTE), "    1|");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kind(u16);

/// Where a kind falls in NIP-01's storage rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindRange {
    /// Stored by relays, all of them.
    Regular,
    /// Only the latest per pubkey and kind is kept.
    Replaceable,
    /// Not stored by relays, only forwarded.
    Ephemeral,
    /// Only the latest per pubkey, kind and `d` tag is kept.
    Addressable,
}

impl Kind {
    /// 0: user metadata (NIP-01).
    pub const METADATA: Kind = Kind(0);
    /// 1: short text note (NIP-10).
    pub const TEXT_NOTE: Kind = Kind(1);
    /// 3: follow list (NIP-02).
    pub const CONTACTS: Kind = Kind(3);
    /// 5: deletion request (NIP-09).
    pub const DELETION: Kind = Kind(5);
    /// 6: repost (NIP-18).
    pub const REPOST: Kind = Kind(6);
    /// 7: reaction (NIP-25).
    pub const REACTION: Kind = Kind(7);
    /// 10002: relay list metadata (NIP-65).
    pub const RELAY_LIST: Kind = Kind(10002);
    /// 22242: client authentication (NIP-42).
    pub const AUTH: Kind = Kind(22242);

    /// Wraps a kind number.
    pub const fn new(kind: u16) -> Self {
        Kind(kind)
    }

    /// The kind number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// The NIP-01 range this kind belongs to.
    pub const fn range(self) -> KindRange {
        match self.0 {
            0 | 3 | 10000..=19999 => KindRange::Replaceable,
            20000..=29999 => KindRange::Ephemeral,
            30000..=39999 => KindRange::Addressable,
            _ => KindRange::Regular,
        }
    }

    /// `1000 <= n < 10000 || 4 <= n < 45 || n == 1 || n == 2`, and every kind no other
    /// range claims: relays store all of them.
    pub const fn is_regular(self) -> bool {
        matches!(self.range(), KindRange::Regular)
    }

    /// `10000 <= n < 20000 || n == 0 || n == 3`.
    pub const fn is_replaceable(self) -> bool {
        matches!(self.range(), KindRange::Replaceable)
    }

    /// `20000 <= n < 30000`.
    pub const fn is_ephemeral(self) -> bool {
        matches!(self.range(), KindRange::Ephemeral)
    }

    /// `30000 <= n < 40000`.
    pub const fn is_addressable(self) -> bool {
        matches!(self.range(), KindRange::Addressable)
    }
}

impl From<u16> for Kind {
    fn from(kind: u16) -> Self {
        Kind(kind)
    }
}

impl From<Kind> for u16 {
    fn from(kind: Kind) -> u16 {
        kind.0
    }
}

impl fmt::Display for Kind {
    /// The number, honouring width and alignment (`{:>5}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kind({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_nip01() {
        for (n, range) in [
            (0, KindRange::Replaceable),
            (1, KindRange::Regular),
            (2, KindRange::Regular),
            (3, KindRange::Replaceable),
            (4, KindRange::Regular),
            (44, KindRange::Regular),
            (1000, KindRange::Regular),
            (9999, KindRange::Regular),
            (10000, KindRange::Replaceable),
            (19999, KindRange::Replaceable),
            (20000, KindRange::Ephemeral),
            (29999, KindRange::Ephemeral),
            (30000, KindRange::Addressable),
            (39999, KindRange::Addressable),
            (40000, KindRange::Regular),
            (65535, KindRange::Regular),
        ] {
            assert_eq!(Kind::new(n).range(), range, "kind {n}");
        }
    }

    #[test]
    fn out_of_range_is_rejected() {
        assert!(serde_json::from_str::<Kind>("65536").is_err());
        assert!(serde_json::from_str::<Kind>("-1").is_err());
        assert!(serde_json::from_str::<Kind>("\"1\"").is_err());
        assert_eq!(
            serde_json::from_str::<Kind>("65535").ok(),
            Some(Kind::new(65535))
        );
    }
}
