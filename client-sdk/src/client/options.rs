//! How a [`Client`](crate::Client) behaves: connection settings, reconnect
//! backoff, idle detection, and injectable time and randomness.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::relay::ConnectOptions;
use crate::store::KdfParams;

/// Wall-clock time in milliseconds since the Unix epoch. Injectable so
/// tests can move time (e.g. to rotate the signed prekey).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// Exponential backoff with jitter between reconnect attempts: attempt `n`
/// waits a random duration in `[d/2, d]` where `d = min(max, initial · 2^n)`,
/// so many clients that lost the same relay do not come back in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 60 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry).
    pub fn delay<R: rand::Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let ceiling = self.initial.saturating_mul(factor).min(self.max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let floor_ms = ceiling_ms / 2;
        let spread = ceiling_ms - floor_ms;
        let jitter = if spread == 0 {
            0
        } else {
            rng.next_u64() % (spread + 1)
        };
        Duration::from_millis(floor_ms + jitter)
    }
}

/// Settings of a [`Client`](crate::Client). `ClientOptions::default()` suits
/// apps.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// How to connect to relays.
    pub connect: ConnectOptions,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// During [`Client::sync`](crate::Client::sync), how long without a
    /// delivery counts as "nothing more pending". Default 500 ms.
    pub quiet_period: Duration,
    /// During [`Client::run`](crate::Client::run), how often to retry the
    /// outbox and check prekeys. Default 5 minutes.
    pub maintenance_interval: Duration,
    /// Argon2id cost for stores created with a passphrase.
    pub kdf: KdfParams,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Seeds the client's random generator. **Tests only**, and only with
    /// the `test-hooks` feature: `None` (the default) seeds it from the
    /// operating system.
    #[cfg(feature = "test-hooks")]
    pub rng_seed: Option<u64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect: ConnectOptions::default(),
            backoff: Backoff::default(),
            quiet_period: Duration::from_millis(500),
            maintenance_interval: Duration::from_secs(300),
            kdf: KdfParams::DEFAULT,
            clock: Arc::new(SystemClock),
            #[cfg(feature = "test-hooks")]
            rng_seed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (attempt, ceiling_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (4, 1600),
            (5, 2000),
            (40, 2000),
        ] {
            for _ in 0..50 {
                let delay = backoff.delay(attempt, &mut rng).as_millis();
                assert!(
                    delay >= ceiling_ms / 2 && delay <= ceiling_ms,
                    "attempt {attempt}: {delay} ms outside [{}, {ceiling_ms}]",
                    ceiling_ms / 2
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_clients_apart() {
        let backoff = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff.delay(3, &mut rng)).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn the_system_clock_is_after_2024() {
        assert!(SystemClock.now_ms() > 1_704_067_200_000);
    }
}
