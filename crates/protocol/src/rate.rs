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
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
}
