//! Token-bucket rate limiting with time passed in.

use super::config::RateLimit;
use crate::ids::Millis;

/// A token bucket that starts full.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Millis,
}

impl Bucket {
    pub(crate) fn full(limit: RateLimit, now: Millis) -> Self {
        Self {
            tokens: limit.burst,
            last: now,
        }
    }

    /// Takes one token if there is one. Time going backwards refills nothing.
    pub(crate) fn try_take(&mut self, limit: RateLimit, now: Millis) -> bool {
        let elapsed_ms = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.tokens =
            (self.tokens + elapsed_ms as f64 / 1000.0 * limit.per_second).min(limit.burst);
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

    #[test]
    fn allows_a_burst_then_refills_at_the_rate() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3.0,
        };
        let mut bucket = Bucket::full(limit, 1_000);
        assert!((0..3).all(|_| bucket.try_take(limit, 1_000)));
        assert!(!bucket.try_take(limit, 1_000));
        assert!(!bucket.try_take(limit, 1_400), "0.8 tokens after 400 ms");
        assert!(bucket.try_take(limit, 1_500), "1 token after 500 ms");
        assert!(
            !bucket.try_take(limit, 400),
            "time going backwards refills nothing"
        );
        assert!(bucket.try_take(limit, 100_000));
        assert!(
            (0..2).all(|_| bucket.try_take(limit, 100_000)),
            "refill caps at the burst"
        );
        assert!(!bucket.try_take(limit, 100_000));
    }
}
