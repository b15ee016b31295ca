//! Pairing codes: six digits that lead one other person into a session's private room, once,
//! for a few minutes, while that session stays in the room; and the bound on wrong guesses,
//! per address and in all, that keeps them from being found by trying.
//!
//! With `per_address` wrong tries a minute from one address and `total` a minute from all of
//! them, an attacker with every address there is still makes at most `total` tries a minute,
//! so over a code's whole life it finds that code with probability at most
//! `total × lifetime in minutes / 1,000,000`, the README's figure.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use ferry_protocol::{PairCode, PeerId, RoomId};
use tokio::time::Instant;

use crate::address;

/// What wrong tries are counted over.
const WINDOW: Duration = Duration::from_secs(60);

/// The largest multiple of [`PairCode::SPACE`] that fits a `u32`: drawn numbers at or above
/// it are drawn again, so every code is equally likely.
const UNBIASED_BELOW: u32 = (u32::MAX / PairCode::SPACE) * PairCode::SPACE;

/// How pairing is bounded; each is a flag of the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairLimits {
    /// How long a code stays good.
    pub lifetime: Duration,
    /// Wrong codes a minute from one address (an IPv6 /64) before it must wait.
    pub tries_per_address: usize,
    /// Wrong codes a minute from everyone before everyone must wait.
    pub tries_total: usize,
    /// Codes that may be good at once.
    pub max_codes: usize,
}

impl Default for PairLimits {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(600),
            tries_per_address: 10,
            tries_total: 120,
            max_codes: 1_000,
        }
    }
}

/// Why a code cannot be used or made now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PairRefusal {
    /// The address has made too many wrong tries lately; it may try again after this long.
    TooManyFromAddress(Duration),
    /// Everyone together has made too many wrong tries lately.
    TooManyInAll(Duration),
    /// No room has this code.
    Wrong,
    /// As many codes are good as may be.
    Full,
}

/// One good code.
#[derive(Debug)]
struct Code {
    room: RoomId,
    maker: PeerId,
    expires: Instant,
}

/// Every good code and the wrong tries of the last minute.
#[derive(Debug)]
pub(crate) struct Pairing {
    limits: PairLimits,
    codes: HashMap<PairCode, Code>,
    by_maker: HashMap<PeerId, PairCode>,
    wrong_from: HashMap<Option<IpAddr>, Tries>,
    wrong_in_all: Tries,
}

/// When the wrong tries of the last minute were made, oldest first.
#[derive(Debug, Default)]
struct Tries(VecDeque<Instant>);

impl Tries {
    /// How long until fewer than `cap` tries are left in the window at `now`, if there are
    /// `cap` already.
    fn wait(&mut self, cap: usize, now: Instant) -> Option<Duration> {
        while self
            .0
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= WINDOW)
        {
            self.0.pop_front();
        }
        if self.0.len() < cap {
            return None;
        }
        let oldest = *self.0.front()?;
        Some((oldest + WINDOW).saturating_duration_since(now))
    }

    fn record(&mut self, now: Instant) {
        self.0.push_back(now);
    }
}

impl Pairing {
    pub(crate) fn new(limits: PairLimits) -> Self {
        Self {
            limits,
            codes: HashMap::new(),
            by_maker: HashMap::new(),
            wrong_from: HashMap::new(),
            wrong_in_all: Tries::default(),
        }
    }

    /// How long a code stays good.
    pub(crate) fn lifetime(&self) -> Duration {
        self.limits.lifetime
    }

    /// A new code into `room` for `maker`, replacing the one it held, drawn from `numbers`
    /// (uniform `u32`s from a secure source, see [`numbers`]). Should every one of them be
    /// out of range or a code already good (with a thousand good codes, a chance of one in
    /// 10^24 for eight numbers), that counts as no room for another code.
    pub(crate) fn make(
        &mut self,
        maker: &PeerId,
        room: &RoomId,
        now: Instant,
        numbers: impl IntoIterator<Item = u32>,
    ) -> Result<PairCode, PairRefusal> {
        self.forget(maker);
        self.expire(now);
        if self.codes.len() >= self.limits.max_codes {
            return Err(PairRefusal::Full);
        }
        let code = candidates(numbers)
            .into_iter()
            .find(|code| !self.codes.contains_key(code))
            .ok_or(PairRefusal::Full)?;
        self.codes.insert(
            code.clone(),
            Code {
                room: room.clone(),
                maker: maker.clone(),
                expires: now + self.limits.lifetime,
            },
        );
        self.by_maker.insert(maker.clone(), code.clone());
        Ok(code)
    }

    /// The room `code` leads to, tried from `from` at `now`. A wrong code counts against the
    /// address and against everyone; an address or a server past its tries gets no answer
    /// at all, not even for a good code, so trying on cannot tell it anything.
    pub(crate) fn find(
        &mut self,
        code: &PairCode,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Result<RoomId, PairRefusal> {
        let from = from.map(address::place);
        let mine = self.wrong_from.entry(from).or_default();
        if let Some(wait) = mine.wait(self.limits.tries_per_address, now) {
            return Err(PairRefusal::TooManyFromAddress(wait));
        }
        if let Some(wait) = self.wrong_in_all.wait(self.limits.tries_total, now) {
            return Err(PairRefusal::TooManyInAll(wait));
        }
        match self.codes.get(code) {
            Some(found) if found.expires > now => Ok(found.room.clone()),
            _ => {
                mine.record(now);
                self.wrong_in_all.record(now);
                Err(PairRefusal::Wrong)
            }
        }
    }

    /// Ends `code` once it has been used.
    pub(crate) fn used(&mut self, code: &PairCode) {
        if let Some(used) = self.codes.remove(code) {
            self.by_maker.remove(&used.maker);
        }
    }

    /// Ends the code `maker` holds: it left the room, or its session ended.
    pub(crate) fn forget(&mut self, maker: &PeerId) {
        if let Some(code) = self.by_maker.remove(maker) {
            self.codes.remove(&code);
        }
    }

    /// Ends the codes that expired at `now` and forgets tries older than a minute.
    pub(crate) fn expire(&mut self, now: Instant) {
        let by_maker = &mut self.by_maker;
        self.codes.retain(|_, code| {
            let good = code.expires > now;
            if !good {
                by_maker.remove(&code.maker);
            }
            good
        });
        let cap = self.limits.tries_per_address;
        self.wrong_from.retain(|_, tries| {
            tries.wait(cap, now);
            !tries.0.is_empty()
        });
    }
}

/// The codes `numbers` stand for, each equally likely: numbers out of range are left out.
pub(crate) fn candidates(numbers: impl IntoIterator<Item = u32>) -> Vec<PairCode> {
    numbers
        .into_iter()
        .filter(|&n| n < UNBIASED_BELOW)
        .map(PairCode::from_number)
        .collect()
}

/// Numbers to draw a code from ([`Pairing::make`]), from the operating system's secure random
/// source.
pub(crate) fn numbers() -> Result<[u32; 8], getrandom::Error> {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes)?;
    let mut numbers = [0; 8];
    for (number, chunk) in numbers.iter_mut().zip(bytes.chunks_exact(4)) {
        *number = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn peer(byte: u8) -> PeerId {
        PeerId::from_random_bytes([byte; PeerId::BYTES])
    }

    fn room(byte: u8) -> RoomId {
        RoomId::from_random_bytes([byte; RoomId::BYTES])
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    fn random() -> [u32; 8] {
        numbers().unwrap()
    }

    #[test]
    fn a_code_leads_into_its_room_once() {
        let mut pairing = Pairing::new(PairLimits::default());
        let now = Instant::now();
        let code = pairing.make(&peer(1), &room(1), now, random()).unwrap();
        assert_eq!(code.as_str().len(), 6);
        assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(pairing.find(&code, ip(1), now), Ok(room(1)));
        pairing.used(&code);
        assert_eq!(pairing.find(&code, ip(1), now), Err(PairRefusal::Wrong));
    }

    #[test]
    fn a_code_expires_and_ends_with_its_maker_or_its_next_code() {
        let limits = PairLimits::default();
        let mut pairing = Pairing::new(limits);
        let now = Instant::now();
        let first = pairing.make(&peer(1), &room(1), now, random()).unwrap();
        let just_before = now + limits.lifetime - Duration::from_millis(1);
        assert_eq!(pairing.find(&first, ip(1), just_before), Ok(room(1)));
        let expired = now + limits.lifetime;
        assert_eq!(
            pairing.find(&first, ip(1), expired),
            Err(PairRefusal::Wrong)
        );
        pairing.expire(expired);
        assert!(pairing.codes.is_empty() && pairing.by_maker.is_empty());

        let second = pairing.make(&peer(1), &room(1), now, random()).unwrap();
        let third = pairing.make(&peer(1), &room(1), now, random()).unwrap();
        assert_eq!(pairing.find(&second, ip(1), now), Err(PairRefusal::Wrong));
        assert_eq!(pairing.find(&third, ip(1), now), Ok(room(1)));
        pairing.forget(&peer(1));
        assert_eq!(pairing.find(&third, ip(1), now), Err(PairRefusal::Wrong));
    }

    #[test]
    fn drawn_numbers_past_the_last_whole_million_are_drawn_again() {
        let mut pairing = Pairing::new(PairLimits::default());
        let code = pairing
            .make(
                &peer(1),
                &room(1),
                Instant::now(),
                [u32::MAX, UNBIASED_BELOW, 1_234_567],
            )
            .unwrap();
        assert_eq!(code.as_str(), "234567");
        // A code that is already good is never handed out twice.
        let code = pairing
            .make(&peer(2), &room(2), Instant::now(), [234_567, 7])
            .unwrap();
        assert_eq!(code.as_str(), "000007");
        assert_eq!(
            pairing.make(&peer(3), &room(3), Instant::now(), [234_567]),
            Err(PairRefusal::Full)
        );
    }

    #[test]
    fn codes_come_from_the_secure_source_and_spread_over_every_digit() {
        let mut pairing = Pairing::new(PairLimits {
            max_codes: 1_000,
            ..PairLimits::default()
        });
        let now = Instant::now();
        let mut seen = HashSet::new();
        let mut digits = [0usize; 10];
        for n in 0..1_000u32 {
            let maker = PeerId::from_random_bytes(
                [n.to_le_bytes(), [0; 4], [0; 4], [0; 4]]
                    .concat()
                    .try_into()
                    .unwrap(),
            );
            let code = pairing.make(&maker, &room(1), now, random()).unwrap();
            for b in code.as_str().bytes() {
                digits[usize::from(b - b'0')] += 1;
            }
            assert!(seen.insert(code));
        }
        // 6,000 digits, 600 expected of each: a fair source is never this far off.
        assert!(
            digits.iter().all(|&n| (450..=750).contains(&n)),
            "{digits:?}"
        );
        assert_eq!(
            pairing.make(&peer(1), &room(1), now, random()),
            Err(PairRefusal::Full)
        );
    }

    #[test]
    fn wrong_tries_are_bounded_per_address_and_in_all() {
        let limits = PairLimits {
            tries_per_address: 10,
            tries_total: 25,
            ..PairLimits::default()
        };
        let mut pairing = Pairing::new(limits);
        let start = Instant::now();
        let good = pairing.make(&peer(1), &room(1), start, random()).unwrap();
        let wrong = PairCode::from_number((good.as_str().parse::<u32>().unwrap() + 1) % 1_000_000);
        for n in 0..10 {
            let at = start + Duration::from_secs(n);
            assert_eq!(pairing.find(&wrong, ip(1), at), Err(PairRefusal::Wrong));
        }
        // The eleventh in the minute is not even looked at, however good.
        let at = start + Duration::from_secs(15);
        assert_eq!(
            pairing.find(&good, ip(1), at),
            Err(PairRefusal::TooManyFromAddress(Duration::from_secs(45)))
        );
        // Another address still may, and the first may again once its oldest try is a minute old.
        assert_eq!(pairing.find(&good, ip(2), at), Ok(room(1)));
        assert_eq!(pairing.find(&good, ip(1), start + WINDOW), Ok(room(1)));
        // From many addresses, the total runs out: nine tries of the first address are still
        // within the minute, and sixteen more make twenty-five.
        for n in 0..16 {
            assert_eq!(
                pairing.find(&wrong, ip(10 + n), start + WINDOW),
                Err(PairRefusal::Wrong)
            );
        }
        assert!(matches!(
            pairing.find(&good, ip(99), start + WINDOW),
            Err(PairRefusal::TooManyInAll(_))
        ));
        // Everything a minute old is forgotten.
        pairing.expire(start + WINDOW * 3);
        assert!(pairing.wrong_from.is_empty());
        assert_eq!(pairing.find(&good, ip(99), start + WINDOW * 3), Ok(room(1)));
    }
}
