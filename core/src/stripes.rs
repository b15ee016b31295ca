//! Striping: how many peer connections ("lanes") a transfer runs over, and which one takes
//! the next chunk.
//!
//! One SCTP association is held back by its own window: across 20 ms of round trip it carries
//! some 6 MB/s whatever the page does, and several channels on one connection share that
//! window. Several peer connections between the same two browsers are several associations
//! (measured with bare channels across an emulated 20 ms link: 1, 2, 3, 4, 6 and 8
//! connections carried 5.5, 9.7, 13.9, 15.8, 20.7 and 23.8 MB/s, and the receiver's renderer
//! spent less CPU per byte with more of them). Even on loopback one association is not
//! enough for Ferry. Measured there with 1 GiB, same-run against a bare channel's
//! 35–38 MB/s: one lane carried 26 MB/s at 1.44× the bare channel's CPU (all of the
//! receiving browser's processes), two lanes 32–33 MB/s at 1.19×, four lanes 36.6–36.9 MB/s
//! at 1.06–1.13×. Most likely the page's own work (hashing, handing blocks to its writer)
//! delays its reading of a single association, whose receive window then holds the sender
//! back; several associations have several windows.
//!
//! So a transfer large enough to last a while starts on four lanes, a small one on one; while
//! the round trip is long, the lanes double as long as the last doubling raised the
//! throughput, up to a cap. New lanes need a moment to connect and to open their congestion
//! windows, so the second after lanes are added is not measured: measured, it made a
//! doubling that paid look as if it did not (at 20 ms, transfers settled on four lanes at
//! 10.7 MB/s where eight carried 16.6).

/// Below this round trip, one connection is not what holds a transfer back.
pub const MIN_RTT_MS: f64 = 4.0;

/// The most lanes a transfer uses.
pub const MAX_LANES: usize = 8;

/// The lanes a large transfer starts on (see the measurements above; bare channels across
/// 20 ms also carried 15.8 MB/s on four connections, and 9.7 on two).
pub const START_LANES: usize = 4;

/// From this size on, a transfer starts on [`START_LANES`]: one lane carries less in about
/// half a second on a LAN, where more lanes would only add connections to set up.
pub const STRIPE_FROM: u64 = 16 << 20;

/// How long one lane count is measured before the next decision, in seconds.
pub const SAMPLE_SECS: f64 = 1.0;

/// A doubling must raise throughput by this share to be worth the next one. Bare channels
/// gain 50 % or more per doubling at 20 ms; Ferry's transfers measured +80 % from one to two
/// lanes but only +11 % from four to eight, where the two cores are nearly spent, and a link
/// whose rate is the limit gains nothing.
const GAIN: f64 = 1.1;

/// How many lanes a transfer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// Start with one, add while it pays, up to a cap.
    Adaptive {
        /// The most lanes.
        max: usize,
    },
    /// Always this many (for tests).
    Fixed(usize),
}

/// The scheduler's state for one transfer.
#[derive(Clone, Debug)]
pub struct Striping {
    policy: Lanes,
    lanes: usize,
    /// When the current lane count was set, and the bytes delivered then.
    since: Option<(f64, u64)>,
    /// The throughput measured with the lanes before the last doubling, in bytes per second.
    before: Option<f64>,
    /// No more lanes: the last doubling did not pay.
    settled: bool,
    /// Lanes were just added: the current sample is not measured.
    warming: bool,
    /// The shortest round trip seen, in milliseconds: a busy CPU delays the answers that
    /// measure it (loopback read 6 ms and more under load), but never makes one shorter.
    shortest_rtt: Option<f64>,
}

impl Default for Lanes {
    fn default() -> Self {
        Self::Adaptive { max: MAX_LANES }
    }
}

impl Striping {
    /// The schedule of a transfer of `size` bytes under `policy`, over a connection whose
    /// round trip is `rtt_ms` (when known) as the transfer starts.
    pub fn new(policy: Lanes, size: u64, rtt_ms: Option<f64>) -> Self {
        let lanes = match policy {
            Lanes::Adaptive { max } if size >= STRIPE_FROM => max.clamp(1, START_LANES),
            Lanes::Adaptive { .. } => 1,
            Lanes::Fixed(lanes) => lanes.max(1),
        };
        Self {
            policy,
            lanes,
            since: None,
            before: None,
            settled: false,
            warming: lanes > 1,
            shortest_rtt: rtt_ms,
        }
    }

    /// How many lanes to use now.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Takes a sample at `now` (seconds) of the bytes `delivered` so far and the round trip
    /// (milliseconds, when known); returns how many lanes to use from now on.
    pub fn sample(&mut self, now: f64, delivered: u64, rtt_ms: Option<f64>) -> usize {
        let Lanes::Adaptive { max } = self.policy else {
            return self.lanes;
        };
        if let Some(rtt) = rtt_ms {
            self.shortest_rtt = Some(self.shortest_rtt.map_or(rtt, |shortest| shortest.min(rtt)));
        }
        let Some((start, at_start)) = self.since else {
            self.since = Some((now, delivered));
            return self.lanes;
        };
        let elapsed = now - start;
        if elapsed < SAMPLE_SECS || self.settled {
            return self.lanes;
        }
        if self.warming {
            self.warming = false;
            self.since = Some((now, delivered));
            return self.lanes;
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = delivered.saturating_sub(at_start) as f64 / elapsed;
        let paid = self.before.is_none_or(|before| rate >= before * GAIN);
        let far = self.shortest_rtt.is_some_and(|rtt| rtt >= MIN_RTT_MS);
        if !paid {
            // The last doubling did not raise the throughput: keep what there is (an idle
            // association costs next to nothing), and no more.
            self.settled = true;
        } else if far && self.lanes < max.min(MAX_LANES) {
            self.before = Some(rate);
            self.lanes = (self.lanes * 2).min(max.min(MAX_LANES));
            self.warming = true;
        }
        self.since = Some((now, delivered));
        self.lanes
    }
}

/// The lane for the next chunk: the one with the fewest bytes queued (`buffered`, per lane),
/// among those below `high_water`; `None` when all are full.
pub fn pick_lane(buffered: &[u64], high_water: u64) -> Option<usize> {
    buffered
        .iter()
        .enumerate()
        .filter(|(_, queued)| **queued <= high_water)
        .min_by_key(|(_, queued)| **queued)
        .map(|(lane, _)| lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    /// Small enough to start on one lane.
    const SMALL: u64 = STRIPE_FROM - 1;

    /// Large enough to start on several lanes.
    const LARGE: u64 = 1 << 30;

    /// Runs the scheduler for a transfer of `size` bytes with `rate_for(lanes)` MB/s and the
    /// round trip `rtt`, one sample a second, and returns the lane counts it chose.
    fn run(size: u64, rtt: f64, rate_for: impl Fn(usize) -> u64, seconds: u32) -> Vec<usize> {
        let mut striping = Striping::new(Lanes::default(), size, None);
        let mut delivered = 0;
        let mut chosen = vec![striping.sample(0.0, 0, Some(rtt))];
        for second in 1..=seconds {
            delivered += rate_for(striping.lanes()) * MB;
            chosen.push(striping.sample(f64::from(second), delivered, Some(rtt)));
        }
        chosen
    }

    #[test]
    fn on_a_lan_a_small_transfer_stays_on_one_lane_and_a_large_one_on_four() {
        assert!(run(SMALL, 0.3, |_| 30, 10).iter().all(|&lanes| lanes == 1));
        assert!(run(LARGE, 0.3, |_| 30, 10).iter().all(|&lanes| lanes == 4));
    }

    #[test]
    fn a_round_trip_stretched_by_a_busy_cpu_adds_no_lanes() {
        // Loopback measured 0.3 ms as the transfer started, and 6 ms and more once both
        // browsers kept the two cores busy.
        let mut striping = Striping::new(Lanes::default(), LARGE, Some(0.3));
        let mut delivered = 0;
        for second in 0..10 {
            delivered += 30 * MB;
            assert_eq!(striping.sample(f64::from(second), delivered, Some(6.0)), 4);
        }
    }

    #[test]
    fn a_long_round_trip_doubles_the_lanes_while_they_pay() {
        // The measured bare-channel figures at 20 ms, with 5 and 7 in between.
        let rates = [0, 5, 10, 14, 16, 18, 21, 22, 24];
        let chosen = run(SMALL, 20.0, |lanes| rates[lanes], 7);
        // Each doubling is followed by a second that is not measured.
        assert_eq!(chosen, [1, 2, 2, 4, 4, 8, 8, 8]);
    }

    #[test]
    fn new_lanes_get_a_second_to_come_up_before_they_are_judged() {
        // New lanes carry nothing in their first second: judged on it, the doubling from
        // two to four would look as if it did not pay.
        let mut striping = Striping::new(Lanes::default(), SMALL, None);
        let mut delivered = 0;
        let mut carrying = 1;
        let mut chosen = vec![striping.sample(0.0, 0, Some(20.0))];
        for second in 1..=6 {
            delivered += 4 * carrying as u64 * MB;
            carrying = striping.lanes();
            chosen.push(striping.sample(f64::from(second), delivered, Some(20.0)));
        }
        assert_eq!(chosen, [1, 2, 2, 4, 4, 8, 8]);
    }

    #[test]
    fn a_large_transfer_starts_on_four_lanes_and_a_small_one_on_one() {
        assert_eq!(Striping::new(Lanes::default(), LARGE, None).lanes(), 4);
        assert_eq!(
            Striping::new(Lanes::default(), SMALL, Some(20.0)).lanes(),
            1
        );
        assert_eq!(
            Striping::new(Lanes::Adaptive { max: 1 }, LARGE, None).lanes(),
            1
        );
    }

    #[test]
    fn a_link_whose_rate_is_the_limit_stops_after_one_doubling() {
        let chosen = run(SMALL, 50.0, |_| 2, 6);
        assert_eq!(chosen, [1, 2, 2, 2, 2, 2, 2]);
        // Started on four lanes, the first second is theirs to come up in; the doubling is
        // measured after its own such second, and no other follows.
        let mut striping = Striping::new(Lanes::default(), LARGE, Some(50.0));
        assert_eq!(striping.sample(0.0, 0, Some(50.0)), 4);
        assert_eq!(striping.sample(1.0, 2 * MB, Some(50.0)), 4);
        assert_eq!(striping.sample(2.0, 4 * MB, Some(50.0)), 8);
        assert_eq!(striping.sample(3.0, 6 * MB, Some(50.0)), 8);
        assert_eq!(striping.sample(4.0, 8 * MB, Some(50.0)), 8);
        assert_eq!(striping.sample(9.0, 18 * MB, Some(50.0)), 8);
    }

    #[test]
    fn a_cap_below_the_next_doubling_is_kept() {
        let mut striping = Striping::new(Lanes::Adaptive { max: 3 }, SMALL, None);
        let mut delivered = 0;
        let mut chosen = vec![striping.sample(0.0, 0, Some(30.0))];
        for second in 1..=4 {
            delivered += 5 * striping.lanes() as u64 * MB;
            chosen.push(striping.sample(f64::from(second), delivered, Some(30.0)));
        }
        assert_eq!(chosen, [1, 2, 2, 3, 3]);
    }

    #[test]
    fn a_fixed_count_never_changes() {
        let mut striping = Striping::new(Lanes::Fixed(3), SMALL, Some(50.0));
        assert_eq!(striping.sample(0.0, 0, Some(50.0)), 3);
        assert_eq!(striping.sample(5.0, 100 * MB, Some(50.0)), 3);
    }

    #[test]
    fn the_least_loaded_lane_below_the_high_water_mark_is_picked() {
        assert_eq!(pick_lane(&[5, 3, 9], 10), Some(1));
        assert_eq!(pick_lane(&[12, 11, 9], 10), Some(2));
        assert_eq!(pick_lane(&[12, 11], 10), None);
        assert_eq!(pick_lane(&[], 10), None);
    }
}
