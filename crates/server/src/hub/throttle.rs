//! Rates by key (an address, a room): a token bucket per key, made on first use and forgotten
//! once it is full again, so the table only holds keys that are busy right now. Pure.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use switchboard_protocol::rate::TokenBucket;

/// How many uses between sweeps of the buckets that are full again.
const SWEEP_EVERY: u32 = 1024;

/// Token buckets by key, all with one rate and burst.
#[derive(Debug)]
pub struct RateTable<K> {
    buckets: HashMap<K, TokenBucket>,
    per_second: f64,
    burst: u32,
    uses: u32,
}

impl<K: Hash + Eq + Clone> RateTable<K> {
    /// `per_second` tokens per second (fractional allowed), up to `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            buckets: HashMap::new(),
            per_second,
            burst,
            uses: 0,
        }
    }

    /// Takes a token for `key`, if it has one.
    pub fn try_take(&mut self, key: &K, now: Instant) -> bool {
        self.sweep(now);
        let (per_second, burst) = (self.per_second, self.burst);
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::full(burst, now))
            .try_take_amount(per_second, burst, 1.0, now)
    }

    /// Whether `key` has a token, without taking it.
    pub fn allows(&mut self, key: &K, now: Instant) -> bool {
        let (per_second, burst) = (self.per_second, self.burst);
        self.buckets
            .get_mut(key)
            .is_none_or(|bucket| bucket.has_token(per_second, burst, now))
    }

    /// Keys remembered (busy ones).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Every `SWEEP_EVERY` uses, forgets the keys whose bucket is full again.
    fn sweep(&mut self, now: Instant) {
        self.uses += 1;
        if self.uses < SWEEP_EVERY {
            return;
        }
        self.uses = 0;
        let (per_second, burst) = (self.per_second, self.burst);
        self.buckets
            .retain(|_, bucket| !bucket.is_full(per_second, burst, now));
    }
}

/// The hub's join throttles: joins per address and per room (presence storms), and lookups of
/// private rooms by name per address (guessing room codes).
#[derive(Debug)]
pub struct Throttles {
    /// Joins per IP address.
    pub joins_by_ip: RateTable<std::net::IpAddr>,
    /// Joins per room (only rooms that have members: a new room cannot storm).
    pub joins_by_room: RateTable<String>,
    /// Failed lookups of rooms that must exist (codes, sessions), and joins by a code-shaped
    /// name, per IP address.
    pub lookups_by_ip: RateTable<std::net::IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_key_has_its_own_budget() {
        let now = Instant::now();
        let mut table = RateTable::new(1.0, 2);
        assert!(table.try_take(&"a", now));
        assert!(table.try_take(&"a", now));
        assert!(!table.try_take(&"a", now));
        assert!(!table.allows(&"a", now));
        assert!(table.allows(&"b", now), "an unknown key has its full burst");
        assert!(table.try_take(&"b", now));
        assert!(table.allows(&"a", now + Duration::from_secs(1)));
    }

    #[test]
    fn keys_whose_bucket_refilled_are_forgotten() {
        let now = Instant::now();
        let mut table = RateTable::new(10.0, 5);
        for i in 0..100u32 {
            table.try_take(&i, now);
        }
        assert_eq!(table.len(), 100);
        // A second later every bucket is full again: the next sweep forgets them.
        let later = now + Duration::from_secs(1);
        for _ in 0..SWEEP_EVERY {
            table.try_take(&u32::MAX, later);
        }
        assert_eq!(table.len(), 1);
    }
}
