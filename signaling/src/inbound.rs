//! What others may send one reader through the server: the signals relayed to a client are
//! bounded for each sender and in all, both in bytes still waiting to be written to it and in
//! bytes per second. A signal past a bound is refused to its sender, who is cut off if it
//! keeps trying; the reader is never cut off for what others send it. A reader that keeps up with a peer's signalling (some tens of kilobytes
//! for a connection's offer, answer and candidates) never meets a bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_protocol::PeerId;
use tokio::time::Instant;

use crate::rate::{RateLimiter, Verdict};

/// The bounds on signals to one reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalLimits {
    /// Bytes of one sender's signals waiting to be written to the reader.
    pub waiting_per_sender: usize,
    /// Bytes of everyone's signals waiting to be written to the reader.
    pub waiting: usize,
    /// Bytes per second one sender may send the reader, on average; twice as many at once.
    pub per_sec_per_sender: u32,
    /// Bytes per second everyone may send the reader, on average; twice as many at once.
    pub per_sec: u32,
}

impl Default for SignalLimits {
    fn default() -> Self {
        // A connection's offer, answer and candidates come to some 10 KB; eight at once, a
        // striped transfer's, to some 80 KB.
        Self {
            waiting_per_sender: 256 * 1024,
            waiting: 1024 * 1024,
            per_sec_per_sender: 256 * 1024,
            per_sec: 1024 * 1024,
        }
    }
}

/// Why a signal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    /// This sender has sent the reader more than it takes.
    Sender,
    /// Everyone together has.
    Reader,
}

/// The signals waiting for one reader and their rates, overall and per sender.
#[derive(Debug)]
pub(crate) struct Inbound {
    limits: SignalLimits,
    waiting: Arc<AtomicUsize>,
    rate: RateLimiter,
    senders: HashMap<PeerId, Sender>,
}

#[derive(Debug)]
struct Sender {
    waiting: Arc<AtomicUsize>,
    rate: RateLimiter,
}

/// The bytes one admitted signal holds of its sender's and its reader's allowances, given
/// back when it is dropped: once written to the socket, or with the queue.
#[derive(Debug)]
pub(crate) struct Charge {
    len: usize,
    sender: Arc<AtomicUsize>,
    reader: Arc<AtomicUsize>,
}

/// Senders remembered past this many are forgotten once idle, so a reader that many people
/// signal over a long session does not keep them all.
const REMEMBERED_SENDERS: usize = 64;

impl Inbound {
    /// Nothing waiting yet, at `now`.
    pub(crate) fn new(limits: SignalLimits, now: Instant) -> Self {
        Self {
            limits,
            waiting: Arc::default(),
            rate: bytes_per_sec(limits.per_sec, now),
            senders: HashMap::new(),
        }
    }

    /// Admits a signal of `len` bytes from `from` at `now`, or says which bound it is past.
    pub(crate) fn admit(
        &mut self,
        from: &PeerId,
        len: usize,
        now: Instant,
    ) -> Result<Charge, Busy> {
        if self.senders.len() >= REMEMBERED_SENDERS {
            self.senders.retain(|_, sender| {
                sender.waiting.load(Ordering::Acquire) > 0 || !sender.rate.is_full(now)
            });
        }
        let limits = self.limits;
        let sender = self.senders.entry(from.clone()).or_insert_with(|| Sender {
            waiting: Arc::default(),
            rate: bytes_per_sec(limits.per_sec_per_sender, now),
        });
        let cost = u32::try_from(len).unwrap_or(u32::MAX);
        if sender.waiting.load(Ordering::Acquire) + len > limits.waiting_per_sender
            || sender.rate.check_cost(now, cost) != Verdict::Allow
        {
            return Err(Busy::Sender);
        }
        if self.waiting.load(Ordering::Acquire) + len > limits.waiting
            || self.rate.check_cost(now, cost) != Verdict::Allow
        {
            return Err(Busy::Reader);
        }
        sender.waiting.fetch_add(len, Ordering::AcqRel);
        self.waiting.fetch_add(len, Ordering::AcqRel);
        Ok(Charge {
            len,
            sender: Arc::clone(&sender.waiting),
            reader: Arc::clone(&self.waiting),
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.sender.fetch_sub(self.len, Ordering::AcqRel);
        self.reader.fetch_sub(self.len, Ordering::AcqRel);
    }
}

/// A bucket of `per_sec` bytes a second holding twice as many, full at `now`; it never cuts
/// anyone off by itself.
fn bytes_per_sec(per_sec: u32, now: Instant) -> RateLimiter {
    RateLimiter::new(per_sec, per_sec.saturating_mul(2), u32::MAX, now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn peer(byte: u8) -> PeerId {
        PeerId::from_random_bytes([byte; PeerId::BYTES])
    }

    fn limits() -> SignalLimits {
        SignalLimits {
            waiting_per_sender: 100,
            waiting: 150,
            per_sec_per_sender: 1000,
            per_sec: 1000,
        }
    }

    #[test]
    fn what_waits_is_bounded_per_sender_and_in_all_until_it_is_written() {
        let now = Instant::now();
        let mut inbound = Inbound::new(limits(), now);
        let first = inbound.admit(&peer(1), 60, now).unwrap();
        assert_eq!(inbound.admit(&peer(1), 60, now).unwrap_err(), Busy::Sender);
        let _second = inbound.admit(&peer(2), 60, now).unwrap();
        assert_eq!(inbound.admit(&peer(3), 60, now).unwrap_err(), Busy::Reader);
        // Written (dropped with its message): its bytes count no more.
        drop(first);
        assert!(inbound.admit(&peer(1), 60, now).is_ok());
    }

    #[test]
    fn a_sender_past_its_rate_is_refused_and_others_are_not() {
        let now = Instant::now();
        let mut inbound = Inbound::new(
            SignalLimits {
                waiting_per_sender: usize::MAX,
                waiting: usize::MAX,
                per_sec_per_sender: 100,
                per_sec: 1000,
            },
            now,
        );
        // Twice the rate at once, then nothing more until time passes.
        for _ in 0..4 {
            drop(inbound.admit(&peer(1), 50, now).unwrap());
        }
        assert_eq!(inbound.admit(&peer(1), 50, now).unwrap_err(), Busy::Sender);
        assert!(inbound.admit(&peer(2), 50, now).is_ok());
        let later = now + Duration::from_millis(500);
        assert!(inbound.admit(&peer(1), 50, later).is_ok());
    }

    #[test]
    fn idle_senders_are_forgotten_once_there_are_many() {
        let now = Instant::now();
        let mut inbound = Inbound::new(SignalLimits::default(), now);
        for byte in 0..=u8::try_from(REMEMBERED_SENDERS).unwrap() {
            drop(inbound.admit(&peer(byte), 10, now).unwrap());
        }
        let later = now + Duration::from_secs(10);
        drop(inbound.admit(&peer(200), 10, later).unwrap());
        assert_eq!(inbound.senders.len(), 1);
    }
}
