//! Nick claims and the places of each limit in a process's memory, with the same meaning as
//! the Redis store's: the model the store's behaviour suite holds Redis to.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{Claim, Claimed};

/// Claims by key name, and the places of each limit by owner, each with when it runs out.
#[derive(Debug, Default)]
pub struct Memory {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    names: HashMap<String, (String, Instant)>,
    limits: HashMap<String, HashMap<String, Instant>>,
}

impl Memory {
    pub(super) fn claim(&self, claim: &Claim, ttl: Duration, restoring: bool) -> Claimed {
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
        for (index, (name, (_, places))) in claim.limit_names().zip(&claim.limits).enumerate() {
            let taken = held.limits.entry(name).or_default();
            taken.retain(|_, until| *until > now);
            if !restoring && !taken.contains_key(&claim.owner) && taken.len() >= *places {
                return Claimed::Limited(index);
            }
        }
        for name in claim.limit_names() {
            let taken = held.limits.entry(name).or_default();
            taken.insert(claim.owner.clone(), now + ttl);
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
        for name in claim.limit_names() {
            if let Some(taken) = held.limits.get_mut(&name) {
                taken.remove(&claim.owner);
                if taken.is_empty() {
                    held.limits.remove(&name);
                }
            }
        }
    }

    pub(super) fn refresh(&self, claims: &[Claim], ttl: Duration) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.names.retain(|_, (_, until)| *until > now);
        held.limits.retain(|_, taken| {
            taken.retain(|_, until| *until > now);
            !taken.is_empty()
        });
        for claim in claims {
            for name in claim.names() {
                if let Some((owner, until)) = held.names.get_mut(&name)
                    && owner == &claim.owner
                {
                    *until = now + ttl;
                }
            }
            for name in claim.limit_names() {
                if let Some(until) = held
                    .limits
                    .get_mut(&name)
                    .and_then(|taken| taken.get_mut(&claim.owner))
                {
                    *until = now + ttl;
                }
            }
        }
    }
}
