//! Fixed-size values that travel as lowercase hex: [`EventId`], [`PublicKey`], [`Signature`].

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::hex::{self, HexError};

macro_rules! hex_bytes_type {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses exactly the lowercase hex form; anything else is a [`HexError`].
            pub fn from_hex(s: &str) -> Result<Self, HexError> {
                hex::decode_array::<$len>(s).map(Self)
            }

            /// The lowercase hex form.
            pub fn to_hex(&self) -> String {
                hex::encode(&self.0)
            }

            fn write_hex<'b>(&self, buf: &'b mut [u8; 2 * $len]) -> &'b str {
                hex::encode_into(&self.0, buf);
                // Only ASCII hex digits were written.
                std::str::from_utf8(buf).unwrap_or_default()
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                Self::from_hex(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 2 * $len];
                f.write_str(self.write_hex(&mut buf))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut buf = [0u8; 2 * $len];
                serializer.serialize_str(self.write_hex(&mut buf))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct HexVisitor;
                impl<'de> Visitor<'de> for HexVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} as {} lowercase hex characters", $what, 2 * $len)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_hex(v).map_err(|e| E::custom(format_args!("{}: {}", $what, e)))
                    }
                }
                deserializer.deserialize_str(HexVisitor)
            }
        }
    };
}

hex_bytes_type!(
    /// An event id: the SHA-256 of the event's NIP-01 serialization (32 bytes, 64 hex characters).
    ///
    /// ```
    /// use actix_nostr::protocol::EventId;
    /// let id: EventId = "53410bc6d47e87f3f18ecbc93c716b5a6ef8ee3805516b2ff4d155154a685b7c".parse()?;
    /// assert_eq!(id.to_hex().len(), 64);
    /// assert!("53410BC6D47E87F3F18ECBC93C716B5A6EF8EE3805516B2FF4D155154A685B7C".parse::<EventId>().is_err());
    /// # Ok::<(), actix_nostr::protocol::HexError>(())
    /// ```
    EventId, 32, "event id"
);

hex_bytes_type!(
    /// A BIP-340 x-only public key (32 bytes, 64 hex characters).
    ///
    /// Parsing checks only the hex form; whether the key is a point on the curve is checked
    /// when a signature is verified.
    PublicKey, 32, "public key"
);

hex_bytes_type!(
    /// A BIP-340 Schnorr signature (64 bytes, 128 hex characters).
    Signature, 64, "signature"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip() {
        let hex = "53410bc6d47e87f3f18ecbc93c716b5a6ef8ee3805516b2ff4d155154a685b7c";
        let id: EventId = serde_json::from_str(&format!("\"{hex}\"")).expect("parses");
        assert_eq!(id.to_string(), hex);
        assert_eq!(
            serde_json::to_string(&id).expect("serializes"),
            format!("\"{hex}\"")
        );
        assert!(serde_json::from_str::<PublicKey>("\"00\"").is_err());
        assert!(serde_json::from_str::<PublicKey>("null").is_err());
    }
}
