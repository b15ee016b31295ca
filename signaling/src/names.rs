//! The names a server is reached by: what its certificate must name and which URLs people
//! should open, worked out from the listen address and this machine's interfaces.

use std::net::{IpAddr, SocketAddr};

/// This machine as the network sees it: its interface addresses and its host name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    /// Every address of every interface, loopback included.
    pub addresses: Vec<IpAddr>,
    /// The host name, when it is a valid DNS name.
    pub host: Option<String>,
}

impl Machine {
    /// Reads the interfaces and host name of this machine. An interface list that cannot be
    /// read counts as empty: the loopback names still go into the certificate.
    pub fn local() -> Self {
        let addresses = if_addrs::get_if_addrs()
            .map(|interfaces| interfaces.into_iter().map(|i| i.ip()).collect())
            .unwrap_or_default();
        let host = gethostname::gethostname()
            .into_string()
            .ok()
            .filter(|host| is_dns_name(host));
        Self { addresses, host }
    }

    /// The names a certificate for a server on `listen` must carry: the address itself, or,
    /// for an unspecified one (`0.0.0.0`, `::`), every local address of its family; then the
    /// host name, its `.local` form (what phones on a LAN resolve through mDNS), `localhost`
    /// and the loopback addresses.
    pub fn certificate_names(&self, listen: IpAddr) -> Vec<String> {
        let mut names: Vec<String> = self
            .served_addresses(listen)
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Some(host) = &self.host {
            names.push(host.to_ascii_lowercase());
            if !host.contains('.') {
                names.push(format!("{}.local", host.to_ascii_lowercase()));
            }
        }
        names.push("localhost".into());
        names.push("127.0.0.1".into());
        names.push("::1".into());
        names.sort();
        names.dedup();
        names
    }

    /// The URLs to open for a server bound to `addr`: one per address other machines can
    /// reach, or the loopback one when there is no other.
    pub fn urls(&self, addr: SocketAddr, scheme: &str) -> Vec<String> {
        let reachable: Vec<IpAddr> = self
            .served_addresses(addr.ip())
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect();
        let shown = if reachable.is_empty() {
            vec![if addr.ip().is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                addr.ip()
            }]
        } else {
            reachable
        };
        shown
            .into_iter()
            .map(|ip| format!("{scheme}://{}/", SocketAddr::new(ip, addr.port())))
            .collect()
    }

    /// The addresses a socket bound to `listen` answers on: itself, or every local address of
    /// its family when it is unspecified (`::` also takes IPv4 on Linux).
    fn served_addresses(&self, listen: IpAddr) -> Vec<IpAddr> {
        if !listen.is_unspecified() {
            return vec![listen];
        }
        let mut addresses: Vec<IpAddr> = self
            .addresses
            .iter()
            .copied()
            .filter(|ip| listen.is_ipv6() || ip.is_ipv4())
            // Link-local IPv6 addresses need a zone in a URL, which browsers refuse.
            .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }
}

/// Whether `name` is a host name a certificate can carry: dot-separated labels of ASCII
/// letters, digits and hyphens.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            addresses: vec![
                "127.0.0.1".parse().unwrap(),
                "192.168.1.20".parse().unwrap(),
                "10.8.0.5".parse().unwrap(),
                "::1".parse().unwrap(),
                "fe80::1".parse().unwrap(),
                "2001:db8::7".parse().unwrap(),
            ],
            host: Some("Studio".into()),
        }
    }

    #[test]
    fn all_interfaces_means_every_address_of_the_family_and_the_host() {
        assert_eq!(
            machine().certificate_names("0.0.0.0".parse().unwrap()),
            [
                "10.8.0.5",
                "127.0.0.1",
                "192.168.1.20",
                "::1",
                "localhost",
                "studio",
                "studio.local"
            ]
        );
        let both = machine().certificate_names("::".parse().unwrap());
        assert!(both.contains(&"2001:db8::7".to_owned()), "{both:?}");
        assert!(!both.contains(&"fe80::1".to_owned()), "{both:?}");
    }

    #[test]
    fn one_address_means_that_address_and_the_local_names() {
        assert_eq!(
            machine().certificate_names("10.8.0.5".parse().unwrap()),
            [
                "10.8.0.5",
                "127.0.0.1",
                "::1",
                "localhost",
                "studio",
                "studio.local"
            ]
        );
    }

    #[test]
    fn urls_are_the_addresses_others_can_reach() {
        assert_eq!(
            machine().urls("0.0.0.0:3000".parse().unwrap(), "https"),
            ["https://10.8.0.5:3000/", "https://192.168.1.20:3000/"]
        );
        assert_eq!(
            machine().urls("[2001:db8::7]:443".parse().unwrap(), "https"),
            ["https://[2001:db8::7]:443/"]
        );
        assert_eq!(
            Machine::default().urls("0.0.0.0:3000".parse().unwrap(), "http"),
            ["http://127.0.0.1:3000/"]
        );
        assert_eq!(
            machine().urls("127.0.0.1:3000".parse().unwrap(), "http"),
            ["http://127.0.0.1:3000/"]
        );
    }

    #[test]
    fn only_valid_dns_names_are_host_names() {
        assert!(is_dns_name("studio"));
        assert!(is_dns_name("studio-2.lan"));
        assert!(!is_dns_name("my_box"));
        assert!(!is_dns_name("-x"));
        assert!(!is_dns_name("a..b"));
        assert!(!is_dns_name("héllo"));
    }
}
