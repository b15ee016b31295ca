//! Log lines for conditions that can repeat by the thousand (a join storm's slow readers, a
//! flood of refused requests): at most one line a second per condition, saying how many were
//! left out, so a storm cannot fill the disk or drown the lines that matter.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one condition may be logged.
const PERIOD: Duration = Duration::from_secs(1);

/// The log state of one condition; a `static` per call site.
#[derive(Debug)]
pub(crate) struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttle {
    /// A condition not logged yet.
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                last: None,
                skipped: 0,
            }),
        }
    }

    /// `Some(how many were left out since the last line)` when this occurrence may be logged.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < PERIOD)
        {
            state.skipped += 1;
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_that_counts_what_it_left_out() {
        let throttle = Throttle::new();
        let start = Instant::now();
        assert_eq!(throttle.allow_at(start), Some(0));
        for millis in 1..=999 {
            assert_eq!(
                throttle.allow_at(start + Duration::from_millis(millis)),
                None
            );
        }
        assert_eq!(throttle.allow_at(start + PERIOD), Some(999));
        assert_eq!(throttle.allow_at(start + PERIOD * 3), Some(0));
    }
}
