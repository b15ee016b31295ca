//! How many connections are open, in all and per address: every TCP connection counts, from
//! its accept to its close, whatever it turns into (a page load, an API call, a WebSocket).
//!
//! The total stays below the process's file limit, so the server never starves for file
//! descriptors; the last few places are kept for requests that are not new WebSockets, so a
//! health probe still gets through when joins are refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Places kept free of new WebSockets for everything else (health probes, the app's files).
pub const JOIN_RESERVE: usize = 16;

/// The open connections.
#[derive(Debug)]
pub(crate) struct Connections {
    counts: Mutex<Counts>,
    per_ip: usize,
    total: usize,
}

#[derive(Debug, Default)]
struct Counts {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crowded {
    /// Its address has as many connections open as it may.
    Address,
    /// The server has as many connections open as it may.
    Server,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// At most `per_ip` connections from one address and `total` in all.
    pub(crate) fn new(per_ip: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(Counts::default()),
            per_ip,
            total,
        })
    }

    /// Counts a new connection from `ip`, if there is room for it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Crowded> {
        let mut counts = self.lock();
        if counts.total >= self.total {
            return Err(Crowded::Server);
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.per_ip {
            return Err(Crowded::Address);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Slot {
            connections: Arc::clone(self),
            ip,
        })
    }

    /// Whether a connection that is already counted may become a new WebSocket: only while
    /// the places kept for everything else are free.
    pub(crate) fn room_for_join(&self) -> bool {
        self.lock().total + JOIN_RESERVE.min(self.total / 2) <= self.total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn addresses_and_the_server_have_their_limits() {
        let connections = Connections::new(2, 3);
        let a1 = connections.admit(ip(1)).unwrap();
        let _a2 = connections.admit(ip(1)).unwrap();
        assert_eq!(connections.admit(ip(1)).unwrap_err(), Crowded::Address);
        let _b1 = connections.admit(ip(2)).unwrap();
        assert_eq!(connections.admit(ip(3)).unwrap_err(), Crowded::Server);
        drop(a1);
        assert_eq!(connections.lock().total, 2);
        let _c1 = connections.admit(ip(3)).unwrap();
    }

    #[test]
    fn the_last_places_are_kept_from_new_websockets() {
        let connections = Connections::new(100, 40);
        let slots: Vec<Slot> = (0..24).map(|_| connections.admit(ip(1)).unwrap()).collect();
        assert!(connections.room_for_join());
        let more = connections.admit(ip(2)).unwrap();
        assert!(!connections.room_for_join());
        drop(more);
        drop(slots);
        assert_eq!(connections.lock().total, 0);
    }
}
