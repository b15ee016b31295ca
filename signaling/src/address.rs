//! Counting by where people come from: an IPv4 address is one place, an IPv6 address counts
//! with its whole /64 (one network's, which a single machine can fill with addresses of its
//! own at will), and each place may hold only so many of a thing.

use std::collections::HashMap;
use std::net::IpAddr;

/// The place an address counts for: the address itself, or its /64 for IPv6.
pub(crate) fn place(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// How many of a thing each place holds, up to a cap.
#[derive(Debug)]
pub(crate) struct PerPlace {
    cap: usize,
    counts: HashMap<IpAddr, usize>,
}

impl PerPlace {
    /// At most `cap` for each place.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            counts: HashMap::new(),
        }
    }

    /// Counts one more from `ip`, unless its place holds as many as it may.
    pub(crate) fn add(&mut self, ip: IpAddr) -> bool {
        let count = self.counts.entry(place(ip)).or_insert(0);
        if *count >= self.cap {
            return false;
        }
        *count += 1;
        true
    }

    /// Counts one more from `ip` whatever the cap: one that was already counted elsewhere,
    /// moving here.
    pub(crate) fn add_anyway(&mut self, ip: IpAddr) {
        *self.counts.entry(place(ip)).or_insert(0) += 1;
    }

    /// Counts one fewer from `ip`.
    pub(crate) fn remove(&mut self, ip: IpAddr) {
        let place = place(ip);
        if let Some(count) = self.counts.get_mut(&place) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&place);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_is_one_place_and_ipv4_addresses_are_each_their_own() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(place(a), place(b));
        assert_ne!(place(a), place(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(place(v4), v4);
    }

    #[test]
    fn a_place_holds_up_to_its_cap() {
        let mut counts = PerPlace::new(2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(counts.add(a));
        assert!(counts.add(b));
        assert!(!counts.add(a));
        counts.remove(b);
        assert!(counts.add(a));
        counts.add_anyway(a);
        assert_eq!(counts.counts[&place(a)], 3);
    }
}
