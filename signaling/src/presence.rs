//! Presence expiry: who has shown a sign of life within the time-to-live.
//!
//! A plain map from a key to the instant it was last seen, with the clock passed in, so the
//! rules are tested without a runtime and the server drives them from one sweeper task.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The last sign of life of each tracked key, and how long one counts.
#[derive(Debug)]
pub struct Presence<K> {
    ttl: Duration,
    last_seen: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Presence<K> {
    /// Tracks nothing yet; a key stays live for `ttl` after its last [`Presence::touch`].
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            last_seen: HashMap::new(),
        }
    }

    /// Records a sign of life from `key` at `now`, starting to track it if it was not.
    pub fn touch(&mut self, key: K, now: Instant) {
        self.last_seen.insert(key, now);
    }

    /// Stops tracking `key`.
    pub fn remove(&mut self, key: &K) {
        self.last_seen.remove(key);
    }

    /// Whether `key` is tracked and was seen less than the time-to-live before `now`.
    pub fn is_live(&self, key: &K, now: Instant) -> bool {
        self.last_seen
            .get(key)
            .is_some_and(|&seen| now.saturating_duration_since(seen) < self.ttl)
    }

    /// Removes and returns every key whose time-to-live has run out at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<K> {
        let ttl = self.ttl;
        let mut expired = Vec::new();
        self.last_seen.retain(|key, &mut seen| {
            let live = now.saturating_duration_since(seen) < ttl;
            if !live {
                expired.push(key.clone());
            }
            live
        });
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(120);

    #[test]
    fn live_until_the_ttl_has_passed() {
        let start = Instant::now();
        let mut presence = Presence::new(TTL);
        presence.touch("ana", start);
        assert!(presence.is_live(&"ana", start));
        assert!(presence.is_live(&"ana", start + TTL - Duration::from_millis(1)));
        assert!(!presence.is_live(&"ana", start + TTL));
        assert!(!presence.is_live(&"bo", start));
    }

    #[test]
    fn touching_extends_the_lease() {
        let start = Instant::now();
        let mut presence = Presence::new(TTL);
        presence.touch("ana", start);
        presence.touch("ana", start + Duration::from_secs(100));
        assert!(presence.is_live(&"ana", start + Duration::from_secs(200)));
        assert!(presence.expire(start + Duration::from_secs(219)).is_empty());
        assert_eq!(
            presence.expire(start + Duration::from_secs(220)),
            vec!["ana"]
        );
    }

    #[test]
    fn expire_returns_each_key_once_and_keeps_the_live_ones() {
        let start = Instant::now();
        let mut presence = Presence::new(TTL);
        presence.touch("ana", start);
        presence.touch("bo", start + Duration::from_secs(60));
        let later = start + TTL;
        assert_eq!(presence.expire(later), vec!["ana"]);
        assert!(presence.expire(later).is_empty());
        assert!(presence.is_live(&"bo", later));
    }

    #[test]
    fn removed_keys_never_expire() {
        let start = Instant::now();
        let mut presence = Presence::new(TTL);
        presence.touch("ana", start);
        presence.remove(&"ana");
        assert!(!presence.is_live(&"ana", start));
        assert!(presence.expire(start + TTL).is_empty());
    }

    #[test]
    fn a_clock_that_seems_to_go_back_counts_as_fresh() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut presence = Presence::new(TTL);
        presence.touch("ana", start);
        assert!(presence.is_live(&"ana", start - Duration::from_secs(5)));
    }
}
