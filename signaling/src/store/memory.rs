//! The shared state of an instance alone: nick claims in a map, with the same meaning as the
//! Redis store's.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::Claim;

/// Claims by key name: the owner and when the claim runs out.
#[derive(Debug, Default)]
pub struct Memory {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl Memory {
    pub(super) fn claim(&self, claim: &Claim, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let free = claim.names().all(|name| {
            held.get(&name)
                .is_none_or(|(owner, until)| owner == &claim.owner || *until <= now)
        });
        if free {
            for name in claim.names() {
                held.insert(name, (claim.owner.clone(), now + ttl));
            }
        }
        free
    }

    pub(super) fn release(&self, claim: &Claim) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for name in claim.names() {
            if held
                .get(&name)
                .is_some_and(|(owner, _)| owner == &claim.owner)
            {
                held.remove(&name);
            }
        }
    }

    pub(super) fn refresh(&self, claims: &[Claim], ttl: Duration) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|_, (_, until)| *until > now);
        for claim in claims {
            for name in claim.names() {
                if let Some((owner, until)) = held.get_mut(&name)
                    && owner == &claim.owner
                {
                    *until = now + ttl;
                }
            }
        }
    }
}
