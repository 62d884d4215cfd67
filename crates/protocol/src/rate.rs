//! A token bucket: at most `rate` messages per second on average, bursts of up to `burst`. Pure
//! (time is passed in), shared by the hub and the server peer.

use std::time::Instant;

/// Token bucket for one connection's incoming messages. Time is passed in, never read.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            updated: now,
        }
    }

    /// Takes one token if there is one, after refilling for the time since the last call.
    pub fn try_take(&mut self, rate: u32, burst: u32, now: Instant) -> bool {
        self.try_take_amount(f64::from(rate), burst, 1.0, now)
    }

    /// Takes `amount` tokens (bytes, say) if there are that many, refilling at `per_second`
    /// (fractional rates allowed: 0.5 is one every two seconds) up to `burst`.
    pub fn try_take_amount(
        &mut self,
        per_second: f64,
        burst: u32,
        amount: f64,
        now: Instant,
    ) -> bool {
        self.refill(per_second, burst, now);
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }

    /// Whether a token is there (after refilling), without taking it.
    pub fn has_token(&mut self, per_second: f64, burst: u32, now: Instant) -> bool {
        self.refill(per_second, burst, now);
        self.tokens >= 1.0
    }

    /// Whether the bucket is full at `now` (nothing to remember about its owner).
    pub fn is_full(&self, per_second: f64, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * per_second >= f64::from(burst)
    }

    fn refill(&mut self, per_second: f64, burst: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(3, t0);
        assert!((0..3).all(|_| bucket.try_take(10, 3, t0)));
        assert!(!bucket.try_take(10, 3, t0));
        // 10 per second: one token every 100 ms.
        assert!(!bucket.try_take(10, 3, t0 + Duration::from_millis(50)));
        assert!(bucket.try_take(10, 3, t0 + Duration::from_millis(110)));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_take(10, 3, later)));
        assert!(!bucket.try_take(10, 3, later));
    }

    #[test]
    fn amounts_fractional_rates_and_peeking() {
        let t0 = Instant::now();
        let mut bytes = TokenBucket::full(1000, t0);
        assert!(bytes.try_take_amount(100.0, 1000, 600.0, t0));
        assert!(!bytes.try_take_amount(100.0, 1000, 600.0, t0), "400 left");
        assert!(bytes.try_take_amount(100.0, 1000, 600.0, t0 + Duration::from_secs(2)));
        // Half a token per second: one every two seconds.
        let mut slow = TokenBucket::full(1, t0);
        assert!(slow.has_token(0.5, 1, t0));
        assert!(slow.try_take_amount(0.5, 1, 1.0, t0));
        assert!(!slow.has_token(0.5, 1, t0 + Duration::from_secs(1)));
        assert!(!slow.is_full(0.5, 1, t0 + Duration::from_secs(1)));
        assert!(slow.is_full(0.5, 1, t0 + Duration::from_secs(2)));
        assert!(slow.has_token(0.5, 1, t0 + Duration::from_secs(2)));
    }
}
