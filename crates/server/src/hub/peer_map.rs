//! Maps keyed by [`PeerId`] with a hasher that uses the id's own bits.
//!
//! Peer ids are 128 bits from a cryptographic random source, drawn by the server: a client cannot
//! choose them, so folding the bits is as good as a keyed hash here, and much cheaper than SipHash
//! on the relay's hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use switchboard_protocol::PeerId;

/// A `HashMap` from peer ids.
pub type PeerMap<V> = HashMap<PeerId, V, BuildHasherDefault<PeerIdHasher>>;

/// Hashes a `PeerId` by folding its 128 random bits to 64.
#[derive(Default)]
pub struct PeerIdHasher(u64);

impl Hasher for PeerIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, bits: u128) {
        self.0 ^= (bits as u64) ^ ((bits >> 64) as u64);
    }

    /// Only `write_u128` is used by `PeerId`; this keeps any other input well spread (FNV-1a).
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ids_are_distinct_keys() {
        let mut map = PeerMap::default();
        for n in 0..1000u128 {
            map.insert(PeerId::from_u128(n << 64 | n), n);
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(map.get(&PeerId::from_u128(7 << 64 | 7)), Some(&7));
    }
}
