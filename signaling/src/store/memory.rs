//! The shared state of an instance alone: nick claims and each address's sessions in maps,
//! with the same meaning as the Redis store's.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{Claim, Claimed};

/// Claims by key name, and the sessions of each address by owner, each with when it runs out.
#[derive(Debug, Default)]
pub struct Memory {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    names: HashMap<String, (String, Instant)>,
    addresses: HashMap<String, HashMap<String, Instant>>,
}

impl Memory {
    pub(super) fn claim(&self, claim: &Claim, ttl: Duration, per_address: usize) -> Claimed {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let free = claim.names().all(|name| {
            held.names
                .get(&name)
                .is_none_or(|(owner, until)| owner == &claim.owner || *until <= now)
        });
        if !free {
            return Claimed::Taken;
        }
        if let Some(address) = claim.address() {
            let sessions = held.addresses.entry(address).or_default();
            sessions.retain(|_, until| *until > now);
            if !sessions.contains_key(&claim.owner) && sessions.len() >= per_address {
                return Claimed::TooManyFromAddress;
            }
            sessions.insert(claim.owner.clone(), now + ttl);
        }
        for name in claim.names() {
            held.names.insert(name, (claim.owner.clone(), now + ttl));
        }
        Claimed::Won
    }

    pub(super) fn release(&self, claim: &Claim) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for name in claim.names() {
            if held
                .names
                .get(&name)
                .is_some_and(|(owner, _)| owner == &claim.owner)
            {
                held.names.remove(&name);
            }
        }
        if let Some(address) = claim.address()
            && let Some(sessions) = held.addresses.get_mut(&address)
        {
            sessions.remove(&claim.owner);
            if sessions.is_empty() {
                held.addresses.remove(&address);
            }
        }
    }

    pub(super) fn refresh(&self, claims: &[Claim], ttl: Duration) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.names.retain(|_, (_, until)| *until > now);
        held.addresses.retain(|_, sessions| {
            sessions.retain(|_, until| *until > now);
            !sessions.is_empty()
        });
        for claim in claims {
            for name in claim.names() {
                if let Some((owner, until)) = held.names.get_mut(&name)
                    && owner == &claim.owner
                {
                    *until = now + ttl;
                }
            }
            if let Some(address) = claim.address()
                && let Some(until) = held
                    .addresses
                    .get_mut(&address)
                    .and_then(|sessions| sessions.get_mut(&claim.owner))
            {
                *until = now + ttl;
            }
        }
    }
}
