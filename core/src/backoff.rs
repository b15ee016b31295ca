//! Exponential backoff with jitter for reconnecting to the signaling server.
//!
//! Jitter matters here: when the server restarts, every browser loses its connection at the
//! same moment, and without it they would all knock again in lockstep.

use std::time::Duration;

/// Delays that double from `base` up to `max`, each drawn from the upper half of its range.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff whose first delay lies between `base / 2` and `base`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `random` is a uniform sample from `[0, 1]`.
    ///
    /// Taking the random number as a parameter keeps this type deterministic under test.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }

    /// Starts over after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_within_jitter_bounds() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
        let lows: Vec<_> = (0..7).map(|_| backoff.next_delay(0.0)).collect();
        assert_eq!(
            lows,
            [250, 500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis)
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(0.5), Duration::from_millis(750));
    }

    #[test]
    fn survives_many_attempts() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..1000 {
            assert!(backoff.next_delay(1.0) <= Duration::from_secs(30));
        }
    }
}
