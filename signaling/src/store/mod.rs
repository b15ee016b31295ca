//! What the instances of one service share, behind one seam: nick claims that no two sessions
//! anywhere hold at once. Instances given the same Redis URL keep them in Redis ([`redis`])
//! and become one service, telling each other who is where through it ([`crate::cluster`]);
//! an instance alone needs no store, as its registry holds its nicks. [`memory`] keeps claims
//! the same way in a process's memory: the reference the store's behaviour suite holds Redis
//! to.
//!
//! A claim holds every lookalike key of a nick ([`crate::lookalike::keys`]) in a place, all or
//! nothing, for an owner: the digest of the session's token, so the page that held a nick can
//! claim it again through another instance after its own died, and nobody else can. With it,
//! in the same step, it takes a place in each of its limits (the sessions of its address, the
//! classic registrations of an address and in all), which are so one budget for the whole
//! service. A claim lives for its time-to-live unless it is refreshed, so the nicks and places
//! of an instance that died are free again soon after.

pub mod classic;
pub mod codes;
pub mod memory;
pub mod redis;

use std::time::Duration;

use ferry_protocol::SessionToken;
use sha2::{Digest, Sha256};

/// The shared store could not be asked: it is down, restarting or out of reach.
#[derive(Debug, thiserror::Error)]
#[error("the shared store is out of reach: {0}")]
pub struct Unreachable(pub String);

/// A nick held in a place: its lookalike keys, and who holds them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The place, as [`crate::registry::PlaceKey::wire`] names it.
    pub place: String,
    /// The nick's lookalike keys.
    pub keys: Vec<String>,
    /// Who holds it: [`owner_of`] the session's token.
    pub owner: String,
    /// The limits it takes a place in: each a name (such as `ws:ADDRESS`) and how many places
    /// it has. Letting the claim go frees its places; refreshing it keeps them.
    pub limits: Vec<(String, usize)>,
}

/// What a claim came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The owner holds the nick, and a place in each limit, now.
    Won,
    /// Another owner holds the nick, or one that looks like it.
    Taken,
    /// The limit at this index in [`Claim::limits`] has no place left.
    Limited(usize),
}

impl Claim {
    /// The claim of `nick` in `place` for the session with `token`.
    pub fn new(place: &str, nick: &str, token: &SessionToken) -> Self {
        Self {
            place: place.to_owned(),
            keys: crate::lookalike::keys(nick).to_vec(),
            owner: owner_of(token),
            limits: Vec::new(),
        }
    }

    /// The claim of `nick` in `place` for `owner`, who is not a session (a classic
    /// registration's identity).
    pub fn owned(place: &str, nick: &str, owner: String) -> Self {
        Self {
            place: place.to_owned(),
            keys: crate::lookalike::keys(nick).to_vec(),
            owner,
            limits: Vec::new(),
        }
    }

    /// The claim, taking a place in the limit `name`, which has `places`.
    pub fn limited(mut self, name: impl Into<String>, places: usize) -> Self {
        self.limits.push((name.into(), places));
        self
    }

    /// The store's names for the claim's limits.
    fn limit_names(&self) -> impl Iterator<Item = String> + '_ {
        self.limits
            .iter()
            .map(|(name, _)| format!("ferry:limit:{name}"))
    }

    /// The store's names for the claim's keys.
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.keys
            .iter()
            .map(|key| format!("ferry:nick:{}:{key}", self.place))
    }
}

/// The owner a session's claims are held for: a digest of its token, which says who holds a
/// nick without telling anyone the token.
pub fn owner_of(token: &SessionToken) -> String {
    let digest = Sha256::digest(token.as_str().as_bytes());
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Where the shared state lives.
#[derive(Debug)]
pub enum Store {
    /// In this process: the model the behaviour suite holds Redis to.
    Memory(memory::Memory),
    /// In Redis, shared by every instance given the same URL.
    Redis(Box<redis::RedisStore>),
}

impl Store {
    /// Claims `claim` for `ttl`: held by its owner now (newly, or again), or why not.
    ///
    /// Right after the store started empty a claim is refused as [`Unreachable`] for a while,
    /// unless it is `restoring` what an instance held before (which no limit refuses either).
    pub async fn claim(
        &self,
        claim: &Claim,
        ttl: Duration,
        restoring: bool,
    ) -> Result<Claimed, Unreachable> {
        match self {
            Self::Memory(memory) => Ok(memory.claim(claim, ttl, restoring)),
            Self::Redis(redis) => redis.claim(claim, ttl, restoring).await,
        }
    }

    /// Lets `claim` go, if its owner still holds it.
    pub async fn release(&self, claim: &Claim) -> Result<(), Unreachable> {
        match self {
            Self::Memory(memory) => {
                memory.release(claim);
                Ok(())
            }
            Self::Redis(redis) => redis.release(claim).await,
        }
    }

    /// Holds each of `claims` for another `ttl`, where its owner still holds it.
    pub async fn refresh(&self, claims: &[Claim], ttl: Duration) -> Result<(), Unreachable> {
        match self {
            Self::Memory(memory) => {
                memory.refresh(claims, ttl);
                Ok(())
            }
            Self::Redis(redis) => redis.refresh(claims, ttl).await,
        }
    }
}
