//! Peer identifiers: 128 random bits, written as 32 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A peer's identity, assigned by the hub: 128 bits from a cryptographic random source, so it
/// cannot be guessed. On the wire it is always a string of 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(u128);

impl PeerId {
    /// Wraps 128 bits the caller drew from a cryptographic random source.
    pub const fn from_u128(bits: u128) -> Self {
        Self(bits)
    }

    /// The 128 bits of this id.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl PeerId {
    /// The 32 lowercase hex digits of this id, without allocating.
    pub fn to_hex(self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let nibble = (self.0 >> (124 - 4 * i)) & 0xf;
            *byte = DIGITS[nibble as usize];
        }
        out
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// Why a string is not a [`PeerId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a peer id is 32 lowercase hex digits")]
pub struct ParsePeerIdError;

impl FromStr for PeerId {
    type Err = ParsePeerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(ParsePeerIdError);
        }
        // Lowercase only: every id has one spelling, so ids compare as strings too.
        s.bytes()
            .try_fold(0u128, |id, b| {
                let nibble = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => return Err(ParsePeerIdError),
                };
                Ok(id << 4 | u128::from(nibble))
            })
            .map(PeerId)
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hex = self.to_hex();
        serializer.serialize_str(std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PeerId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a peer id (32 lowercase hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PeerId, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = PeerId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let text = id.to_string();
        assert_eq!(text, "0123456789abcdef0011223344556677");
        assert_eq!(text.parse::<PeerId>(), Ok(id));
        let max = "f".repeat(32);
        assert_eq!(max.parse::<PeerId>(), Ok(PeerId::from_u128(u128::MAX)));
    }

    #[test]
    fn rejects_malformed_text() {
        // 32 bytes that are not 32 hex digits (16 two-byte letters).
        let multibyte = "é".repeat(16);
        for bad in [
            "",
            "xyz",
            multibyte.as_str(),
            "ffffffffffffffffffffffffffffffgf",
            "0123456789ABCDEF0011223344556677",
            "+123456789abcdef0011223344556677",
            "0123456789abcdef00112233445566778",
        ] {
            assert_eq!(bad.parse::<PeerId>(), Err(ParsePeerIdError), "{bad}");
        }
    }
}
