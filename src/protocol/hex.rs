//! Lowercase hex, table-driven.
//!
//! Why not the `hex` crate: decoding the three hex fields of an event with it costs
//! about as much as the whole typed JSON parse (notes/performance-facts.md). A 256-entry
//! lookup table makes it nearly free. NIP-01 requires lowercase, so uppercase is rejected.

use std::fmt;

const INVALID: u8 = 0xff;

/// Maps an ASCII byte to its nibble value, or `INVALID`. Only `0-9` and `a-f`.
static DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

const ENCODE: &[u8; 16] = b"0123456789abcdef";

/// Why a hex string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HexError {
    /// The string does not have exactly `expected` characters.
    WrongLength {
        /// Characters required (two per byte).
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// A character is not one of `0-9a-f` (uppercase is refused: NIP-01 says lowercase).
    InvalidChar {
        /// Byte offset of the first bad character.
        index: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::WrongLength { expected, found } => {
                write!(
                    f,
                    "expected {expected} lowercase hex characters, found {found}"
                )
            }
            HexError::InvalidChar { index } => {
                write!(f, "character at index {index} is not lowercase hex")
            }
        }
    }
}

impl std::error::Error for HexError {}

/// Decodes exactly `N` bytes from `2 * N` lowercase hex characters.
pub(crate) fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return Err(HexError::WrongLength {
            expected: 2 * N,
            found: bytes.len(),
        });
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = DECODE[pair[0] as usize];
        let lo = DECODE[pair[1] as usize];
        if hi == INVALID || lo == INVALID {
            let index = 2 * i + usize::from(hi != INVALID);
            return Err(HexError::InvalidChar { index });
        }
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

/// Writes `bytes` as lowercase hex into `out`, which must be `2 * bytes.len()` long.
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = ENCODE[(b >> 4) as usize];
        out[2 * i + 1] = ENCODE[(b & 0x0f) as usize];
    }
}

/// Lowercase hex of any byte slice.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    encode_into(bytes, &mut out);
    // Only ASCII hex digits were written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes: [u8; 4] = [0x00, 0x7f, 0xab, 0xff];
        let s = encode(&bytes);
        assert_eq!(s, "007fabff");
        assert_eq!(decode_array::<4>(&s), Ok(bytes));
    }

    #[test]
    fn rejects_uppercase_non_hex_and_length() {
        assert_eq!(
            decode_array::<2>("00Ab"),
            Err(HexError::InvalidChar { index: 2 })
        );
        assert_eq!(
            decode_array::<2>("000g"),
            Err(HexError::InvalidChar { index: 3 })
        );
        assert_eq!(
            decode_array::<2>("000"),
            Err(HexError::WrongLength {
                expected: 4,
                found: 3
            })
        );
        assert!(decode_array::<1>("é").is_err());
    }
}
