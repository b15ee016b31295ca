//! What the instances of one service share, behind one seam: nick claims that no two sessions
//! anywhere hold at once. One instance alone keeps them in its memory ([`memory`], the
//! default); instances given the same Redis URL keep them in Redis ([`redis`]) and become one
//! service, telling each other who is where through it ([`crate::cluster`]).
//!
//! A claim holds every lookalike key of a nick ([`crate::lookalike::keys`]) in a place, all or
//! nothing, for an owner: the digest of the session's token, so the page that held a nick can
//! claim it again through another instance after its own died, and nobody else can. With it,
//! in the same step, the session takes one of its address's places (sessions per address are
//! one budget for the whole service). A claim lives for the store's time-to-live unless its
//! instance refreshes it, so the nicks and places of an instance that died are free again soon
//! after.

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
    /// The network the session comes from (an IPv4 address, an IPv6 /64), whose places it
    /// counts against; `None` for a session without an address.
    pub from: Option<String>,
}

/// What a claim came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The owner holds the nick, and a place of its address, now.
    Won,
    /// Another owner holds the nick, or one that looks like it.
    Taken,
    /// The address has as many sessions as it may.
    TooManyFromAddress,
}

impl Claim {
    /// The claim of `nick` in `place` for the session with `token`.
    pub fn new(place: &str, nick: &str, token: &SessionToken) -> Self {
        Self {
            place: place.to_owned(),
            keys: crate::lookalike::keys(nick).to_vec(),
            owner: owner_of(token),
            from: None,
        }
    }

    /// The claim of a session from network `from`.
    pub fn from(self, from: impl Into<String>) -> Self {
        Self {
            from: Some(from.into()),
            ..self
        }
    }

    /// The store's name for the places of the claim's address.
    fn address(&self) -> Option<String> {
        self.from.as_ref().map(|from| format!("ferry:from:{from}"))
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
    /// In this process: the server is one instance alone.
    Memory(memory::Memory),
    /// In Redis, shared by every instance given the same URL.
    Redis(Box<redis::RedisStore>),
}

impl Store {
    /// Claims `claim` for `ttl`, its address holding at most `per_address` sessions: held
    /// by its owner now (newly, or again), or why not.
    ///
    /// Right after the store started empty a claim is refused as [`Unreachable`] for a while,
    /// unless it is `restoring` what an instance held before (which no cap refuses either).
    pub async fn claim(
        &self,
        claim: &Claim,
        ttl: Duration,
        per_address: usize,
        restoring: bool,
    ) -> Result<Claimed, Unreachable> {
        let per_address = if restoring { usize::MAX } else { per_address };
        match self {
            Self::Memory(memory) => Ok(memory.claim(claim, ttl, per_address)),
            Self::Redis(redis) => redis.claim(claim, ttl, per_address, restoring).await,
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
