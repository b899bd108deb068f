//! Reconnect waits shared by the uplink and the MQTT bridge: exponential, capped, with jitter so a fleet of
//! boxes that lost the same link does not reconnect in lockstep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng, rngs::SmallRng};

/// Exponential backoff with jitter: the n-th consecutive wait is uniform in `[min, min(max, min * 2^n)]`.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    /// A backoff from `min` to `max`; `salt` (e.g. the edge id) decorrelates boxes started together.
    pub fn new(min: Duration, max: Duration, salt: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let salt =
            salt.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Backoff { min, max: max.max(min), attempt: 0, rng: SmallRng::seed_from_u64(nanos ^ salt) }
    }

    /// Starts over from `min` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.min.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let (lo, hi) = (self.min.as_micros() as u64, cap.as_micros() as u64);
        if hi <= lo {
            return cap;
        }
        Duration::from_micros(self.rng.random_range(lo..=hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(500));
        let mut b = Backoff::new(min, max, "edge-1");
        for n in 0..12u32 {
            let cap = min.saturating_mul(1 << n).min(max);
            let d = b.next_delay();
            assert!(d >= min && d <= cap, "attempt {n}: {d:?} not in {min:?}..={cap:?}");
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
