//! Transfer speed and time left, estimated over a sliding window so that the figures follow
//! the current speed without jumping with every chunk.

use std::collections::VecDeque;

/// A speed estimator fed with (time, bytes so far) samples.
#[derive(Clone, Debug)]
pub struct RateEstimator {
    window_secs: f64,
    samples: VecDeque<(f64, u64)>,
}

impl RateEstimator {
    /// An estimator that averages over the last `window_secs` seconds.
    pub fn new(window_secs: f64) -> Self {
        Self {
            window_secs,
            samples: VecDeque::new(),
        }
    }

    /// Records that `total_bytes` had been moved at `now_secs` (any monotonic clock).
    pub fn record(&mut self, now_secs: f64, total_bytes: u64) {
        self.samples.push_back((now_secs, total_bytes));
        // Keep one sample older than the window so the estimate always spans a full window.
        while self.samples.len() > 2 && now_secs - self.samples[1].0 >= self.window_secs {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window, once at least 0.2 s of samples exist.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        let (first_time, first_bytes) = *self.samples.front()?;
        let (last_time, last_bytes) = *self.samples.back()?;
        let elapsed = last_time - first_time;
        if elapsed < 0.2 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let moved = last_bytes.saturating_sub(first_bytes) as f64;
        Some(moved / elapsed)
    }

    /// Seconds until `remaining` more bytes are moved at the current speed.
    pub fn seconds_left(&self, remaining: u64) -> Option<f64> {
        let rate = self.bytes_per_sec()?;
        #[allow(clippy::cast_precision_loss)]
        (rate > 0.0).then(|| remaining as f64 / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_some_history() {
        let mut rate = RateEstimator::new(3.0);
        assert_eq!(rate.bytes_per_sec(), None);
        rate.record(0.0, 0);
        rate.record(0.1, 100);
        assert_eq!(rate.bytes_per_sec(), None);
    }

    #[test]
    fn steady_rate_and_time_left() {
        let mut rate = RateEstimator::new(3.0);
        for step in 0..=10 {
            rate.record(f64::from(step), u64::from(step as u32) * 1_000_000);
        }
        assert_eq!(rate.bytes_per_sec(), Some(1_000_000.0));
        assert_eq!(rate.seconds_left(5_000_000), Some(5.0));
    }

    #[test]
    fn follows_a_change_of_speed_within_the_window() {
        let mut rate = RateEstimator::new(2.0);
        let mut bytes = 0;
        for step in 0..10 {
            bytes += 1000;
            rate.record(f64::from(step), bytes);
        }
        for step in 10..20 {
            bytes += 10_000;
            rate.record(f64::from(step), bytes);
        }
        assert_eq!(rate.bytes_per_sec(), Some(10_000.0));
    }

    #[test]
    fn stalled_transfer_has_no_time_left() {
        let mut rate = RateEstimator::new(2.0);
        rate.record(0.0, 10);
        rate.record(1.0, 10);
        assert_eq!(rate.bytes_per_sec(), Some(0.0));
        assert_eq!(rate.seconds_left(1), None);
    }
}
