//! Counting by where people come from: an IPv4 address is one place, an IPv6 address counts
//! with its whole /64 (one network's, which a single machine can fill with addresses of its
//! own at will), and each place may hold only so many of a thing. Also where a client comes
//! from behind a trusted proxy, and which network an address belongs to, for a lobby scoped
//! to one network.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::http::HeaderMap;

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

/// Where a request comes from: the connection's own address `peer`, or, when a trusted proxy
/// is in front, the last address in `X-Forwarded-For` (the one that proxy saw; anything
/// before it is the client's own claim). A header that names no address leaves `peer`.
pub(crate) fn client(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trust_proxy: bool,
) -> Option<IpAddr> {
    if !trust_proxy {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .or(peer)
}

/// The network a connection comes from, for a lobby where only people of one network meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Network {
    /// Every private, loopback and link-local address: the machines of one LAN, which all
    /// reach a public server through one public address anyway.
    Private,
    /// One public address (an IPv6 /64).
    Public(IpAddr),
}

/// The network `ip` belongs to.
pub(crate) fn network(ip: IpAddr) -> Network {
    let ip = ip.to_canonical();
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                // Unique local (fc00::/7) and link-local (fe80::/10) addresses.
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80
        }
    };
    if private {
        Network::Private
    } else {
        Network::Public(place(ip))
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
    fn private_loopback_and_link_local_addresses_are_one_network_and_public_ones_each_their_own() {
        let private = [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.20",
            "169.254.3.4",
            "::1",
            "fd00::5",
            "fe80::1",
            "::ffff:192.168.1.20",
        ];
        for ip in private {
            assert_eq!(network(ip.parse().unwrap()), Network::Private, "{ip}");
        }
        let a: IpAddr = "203.0.113.5".parse().unwrap();
        let b: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(network(a), Network::Public(a));
        assert_ne!(network(a), network(b));
        assert_eq!(
            network("::ffff:203.0.113.5".parse().unwrap()),
            Network::Public(a)
        );
        assert_eq!(
            network("2001:db8:1:2::1".parse().unwrap()),
            network("2001:db8:1:2::ffff".parse().unwrap())
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_with_its_last_forwarded_address() {
        let peer: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.5".parse().unwrap(),
        );
        assert_eq!(client(peer, &headers, false), peer);
        assert_eq!(
            client(peer, &headers, true),
            Some("203.0.113.5".parse().unwrap())
        );
        headers.append("x-forwarded-for", "2001:db8::7".parse().unwrap());
        assert_eq!(
            client(peer, &headers, true),
            Some("2001:db8::7".parse().unwrap())
        );
        let mut nonsense = HeaderMap::new();
        nonsense.append("x-forwarded-for", "unknown".parse().unwrap());
        assert_eq!(client(peer, &nonsense, true), peer);
        assert_eq!(client(peer, &HeaderMap::new(), true), peer);
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
