//! A rate limit: a token bucket (of messages per connection, or of bytes), plus patience that
//! runs out when a client keeps sending faster than the bucket refills.

use std::time::Duration;

use tokio::time::Instant;

/// What to do with one incoming message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Allow,
    /// Drop it and tell the client.
    Drop,
    /// Drop it and close the connection: the client keeps flooding.
    Disconnect,
}

/// A token bucket of `burst` tokens refilled at `per_sec` tokens a second.
///
/// Dropped messages count as strikes; the strikes are forgiven once the bucket has refilled
/// completely, that is once the client has slowed down for a while. A client that goes on
/// sending faster than `per_sec` never lets the bucket refill, so it reaches `max_strikes`
/// and is disconnected, while a single burst followed by a pause only loses a few messages.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    max_strikes: u32,
    tokens: f64,
    strikes: u32,
    refilled_at: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`. A `per_sec` or `burst` of zero is taken as one, so the limiter
    /// always lets some messages through.
    pub fn new(per_sec: u32, burst: u32, max_strikes: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_sec: f64::from(per_sec.max(1)),
            max_strikes,
            tokens: burst,
            strikes: 0,
            refilled_at: now,
        }
    }

    /// Whether the bucket is (or by `now` has refilled to) full: the client has been quiet long
    /// enough to be as good as new.
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens + elapsed.as_secs_f64() * self.per_sec >= self.burst
    }

    /// Takes a token for a message arriving at `now`, if there is one.
    pub fn check(&mut self, now: Instant) -> Verdict {
        self.check_cost(now, 1)
    }

    /// Takes `cost` tokens (bytes, for a bucket of bytes) for something arriving at `now`, if
    /// there are that many. Something costlier than a full bucket never passes.
    pub fn check_cost(&mut self, now: Instant, cost: u32) -> Verdict {
        self.refill(now);
        let cost = f64::from(cost);
        if self.tokens >= cost {
            self.tokens -= cost;
            return Verdict::Allow;
        }
        self.strike()
    }

    fn refill(&mut self, now: Instant) {
        let elapsed: Duration = now.saturating_duration_since(self.refilled_at);
        self.refilled_at = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.burst);
        if self.tokens >= self.burst {
            self.strikes = 0;
        }
    }

    fn strike(&mut self) -> Verdict {
        self.strikes += 1;
        if self.strikes > self.max_strikes {
            Verdict::Disconnect
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(limiter: &mut RateLimiter, now: Instant, count: usize) -> Vec<Verdict> {
        (0..count).map(|_| limiter.check(now)).collect()
    }

    #[test]
    fn allows_a_burst_then_drops() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(1, 3, 10, now);
        assert_eq!(
            verdicts(&mut limiter, now, 4),
            [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Drop
            ]
        );
    }

    #[test]
    fn refills_at_the_rate() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(10, 1, 10, now);
        assert_eq!(limiter.check(now), Verdict::Allow);
        assert_eq!(limiter.check(now), Verdict::Drop);
        assert_eq!(
            limiter.check(now + Duration::from_millis(50)),
            Verdict::Drop
        );
        assert_eq!(
            limiter.check(now + Duration::from_millis(100)),
            Verdict::Allow
        );
    }

    #[test]
    fn a_flood_that_goes_on_is_disconnected() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(1, 2, 3, now);
        assert_eq!(
            verdicts(&mut limiter, now, 6),
            [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Drop,
                Verdict::Drop,
                Verdict::Drop,
                Verdict::Disconnect
            ]
        );
    }

    #[test]
    fn a_pause_long_enough_to_refill_forgives_the_strikes() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(1, 2, 3, now);
        verdicts(&mut limiter, now, 5);
        let later = now + Duration::from_secs(2);
        assert_eq!(
            verdicts(&mut limiter, later, 5),
            [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Drop,
                Verdict::Drop,
                Verdict::Drop
            ]
        );
    }

    #[test]
    fn a_steady_trickle_just_above_the_rate_is_disconnected_in_the_end() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 5, 20, start);
        let mut disconnected_after = None;
        // Twelve messages a second against a refill of ten.
        for i in 0..1_000u64 {
            let now = start + Duration::from_millis(i * 1000 / 12);
            if limiter.check(now) == Verdict::Disconnect {
                disconnected_after = Some(i);
                break;
            }
        }
        assert!(disconnected_after.is_some());
    }
}
