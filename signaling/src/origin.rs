//! Which browser pages may open a WebSocket: the `Origin` check that keeps other sites from
//! signing users in from their pages.
//!
//! The allowed origins are the server's own, known from its configuration: the addresses and
//! host names it listens on, with its scheme and port, `--public-url`s (the address a reverse
//! proxy serves it at) and `--allowed-origin`s. The request's `Host` header decides nothing:
//! a DNS-rebinding page controls its own host name, and so the `Host` its requests carry.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// The origins allowed to open a WebSocket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Origins {
    allowed: HashSet<String>,
}

impl Origins {
    /// The origins of a server reached as `names` (addresses and host names) at `addr` over
    /// `scheme`, plus `public_urls` and `extra` origins.
    pub(crate) fn new(
        scheme: &str,
        addr: Option<SocketAddr>,
        names: &[String],
        public_urls: &[String],
        extra: &[String],
    ) -> Self {
        let mut allowed = HashSet::new();
        if let Some(addr) = addr {
            for name in names {
                let host = match name.parse::<IpAddr>() {
                    Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
                    _ => name.clone(),
                };
                if let Some(origin) = normalize(&format!("{scheme}://{host}:{}", addr.port())) {
                    allowed.insert(origin);
                }
            }
        }
        allowed.extend(
            public_urls
                .iter()
                .chain(extra)
                .filter_map(|url| normalize(url)),
        );
        Self { allowed }
    }

    /// Whether a WebSocket upgrade with this `Origin` may go ahead. No `Origin` at all is
    /// allowed: programs other than browsers send none, and browsers always do.
    pub(crate) fn allow(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(origin) => normalize(origin).is_some_and(|origin| self.allowed.contains(&origin)),
        }
    }
}

/// `scheme://host[:port]` in lower case, without a default port, path or trailing slash;
/// `None` for what is not such an origin (the opaque origin `null`, say).
fn normalize(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Origins {
        let names = ["10.0.0.2", "::1", "box.local", "localhost"].map(String::from);
        Origins::new(
            "https",
            Some("0.0.0.0:3000".parse().unwrap()),
            &names,
            &["https://ferry.example/app".into()],
            &["http://127.0.0.1:8080".into()],
        )
    }

    #[test]
    fn the_servers_own_names_with_its_scheme_and_port_are_allowed() {
        let origins = origins();
        for origin in [
            None,
            Some("https://10.0.0.2:3000"),
            Some("https://[::1]:3000"),
            Some("HTTPS://Box.Local:3000/"),
            Some("https://localhost:3000"),
            Some("https://ferry.example"),
            Some("https://ferry.example:443"),
            Some("http://127.0.0.1:8080"),
        ] {
            assert!(origins.allow(origin), "{origin:?}");
        }
    }

    #[test]
    fn other_schemes_ports_hosts_and_opaque_origins_are_refused() {
        let origins = origins();
        for origin in [
            "http://10.0.0.2:3000",
            "https://10.0.0.2:3001",
            "https://evil.example:3000",
            "https://ferry.example:8443",
            "null",
            "",
            "10.0.0.2:3000",
            "https://user@10.0.0.2:3000",
        ] {
            assert!(!origins.allow(Some(origin)), "{origin:?}");
        }
    }

    #[test]
    fn without_an_address_only_configured_origins_count() {
        let origins = Origins::new("http", None, &["127.0.0.1".into()], &[], &[]);
        assert!(!origins.allow(Some("http://127.0.0.1:3000")));
        assert!(origins.allow(None));
    }
}
