//! Lowercase hex: decoded eight characters at a time, encoded through a table.
//!
//! Why not the `hex` crate: decoding the three hex fields of an event with it costs
//! about as much as the whole typed JSON parse (notes/performance-facts.md). A 256-entry
//! lookup table made it nearly free (1,404 instructions per event); a word at a time, as
//! LLVM vectorizes it, halves that again (634). NIP-01 requires lowercase, so uppercase is
//! rejected.

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
    decode_slice(s.as_bytes())
}

/// [`decode_array`] of bytes (any byte that is not lowercase hex is an invalid character).
pub(crate) fn decode_slice<const N: usize>(bytes: &[u8]) -> Result<[u8; N], HexError> {
    if bytes.len() != 2 * N {
        return Err(HexError::WrongLength {
            expected: 2 * N,
            found: bytes.len(),
        });
    }
    // Eight characters at a time in a u64, branch-free: each check sets the top bit of the
    // bytes it rejects and the flags are ORed over the whole string, so the offending index
    // is only searched for on the (rare) error path. For ASCII bytes (top bit clear), adding
    // 0x80 - k to every byte at once carries into no neighbour and sets a byte's top bit
    // exactly when the byte is at least k. A nibble is the low four bits, plus 9 for a
    // letter (bit 6 set). The table does the tail of lengths that are not a multiple of 4.
    const ONES: u64 = u64::MAX / 255;
    const LANES: u64 = 0x000f_000f_000f_000f;
    let at_least = |w: u64, k: u8| w.wrapping_add(ONES * u64::from(0x80 - k));
    let mut out = [0u8; N];
    let mut rejected = 0u64;
    let mut tail = 0;
    for (four, eight) in out.chunks_exact_mut(4).zip(bytes.chunks_exact(8)) {
        let Ok(eight) = <[u8; 8]>::try_from(eight) else {
            break;
        };
        let w = u64::from_le_bytes(eight);
        let digit = at_least(w, b'0') & !at_least(w, b'9' + 1);
        let letter = at_least(w, b'a') & !at_least(w, b'f' + 1);
        rejected |= w | !(digit | letter);
        let nibbles = (w & (ONES * 0x0f)) + ((w >> 6) & ONES) * 9;
        let pairs = ((nibbles & LANES) << 4) | ((nibbles >> 8) & LANES);
        let packed = (pairs | pairs >> 8) & 0x0000_ffff_0000_ffff;
        four.copy_from_slice(&((packed | packed >> 16) as u32).to_le_bytes());
        tail += 4;
    }
    let mut seen = 0u8;
    for (byte, pair) in out[tail..]
        .iter_mut()
        .zip(bytes[2 * tail..].chunks_exact(2))
    {
        let hi = DECODE[usize::from(pair[0])];
        let lo = DECODE[usize::from(pair[1])];
        seen |= hi | lo;
        *byte = (hi << 4) | lo;
    }
    if rejected & (ONES << 7) != 0 || seen & 0xf0 != 0 {
        let index = bytes
            .iter()
            .position(|&b| DECODE[usize::from(b)] == INVALID)
            .unwrap_or(0);
        return Err(HexError::InvalidChar { index });
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

    /// The reference: one character at a time, through the table.
    fn decode_slow(s: &[u8]) -> Result<Vec<u8>, usize> {
        s.chunks_exact(2)
            .enumerate()
            .map(|(i, p)| {
                let (hi, lo) = (DECODE[usize::from(p[0])], DECODE[usize::from(p[1])]);
                if hi == INVALID {
                    Err(2 * i)
                } else if lo == INVALID {
                    Err(2 * i + 1)
                } else {
                    Ok((hi << 4) | lo)
                }
            })
            .collect()
    }

    fn check<const N: usize>(s: &[u8]) {
        let text = String::from_utf8_lossy(s);
        if text.len() != s.len() {
            return; // not UTF-8: cannot be a &str
        }
        let fast = decode_array::<N>(&text).map(|a| a.to_vec());
        let slow = decode_slow(s).map_err(|index| HexError::InvalidChar { index });
        assert_eq!(fast, slow, "{text:?}");
    }

    #[test]
    fn every_byte_in_every_position_matches_the_table() {
        // Each of the 256 byte values at each of 16 positions of a valid 8-byte string,
        // and every pair of characters at the start: the branch-free loop must accept
        // exactly what a character-at-a-time check accepts, decode it alike and name the
        // same first bad character.
        let base = *b"0123456789abcdef";
        for position in 0..base.len() {
            for b in 0..=255u8 {
                let mut s = base;
                s[position] = b;
                check::<8>(&s);
            }
        }
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let mut s = *b"00112233";
                s[0] = a;
                s[1] = b;
                check::<4>(&s);
            }
        }
        check::<3>(b"ff00a9");
        check::<5>(b"0a1b2c3d4e");
        check::<5>(b"0a1b2c3d4G");
        assert_eq!(decode_array::<32>(&"ab".repeat(32)), Ok([0xab; 32]),);
    }
}
