//! Which browser pages may open a WebSocket: the `Origin` check that keeps other sites from
//! signing users in from their pages.

/// Whether a WebSocket upgrade with this `Origin` and `Host` may go ahead.
///
/// Allowed: no `Origin` at all (programs other than browsers send none), an origin whose
/// host and port are the request's `Host` (the app served by this server, the normal case),
/// or an origin listed in `allowed` (say, the app on another port under `trunk serve`).
/// Everything else, including the opaque origin `null`, is refused.
pub(crate) fn is_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/');
    if allowed.iter().any(|listed| {
        listed
            .trim()
            .trim_end_matches('/')
            .eq_ignore_ascii_case(origin)
    }) {
        return true;
    }
    let Some((_scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    host.is_some_and(|host| !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks each `(origin, host, expected)` case against the allowed list `allowed`.
    fn check(allowed: &[&str], cases: &[(Option<&str>, Option<&str>, bool)]) {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        for &(origin, host, expected) in cases {
            assert_eq!(
                is_allowed(origin, host, &allowed),
                expected,
                "origin {origin:?}, host {host:?}"
            );
        }
    }

    #[test]
    fn same_origin_and_no_origin_are_allowed() {
        check(
            &[],
            &[
                (None, Some("127.0.0.1:3000"), true),
                (None, None, true),
                (Some("http://127.0.0.1:3000"), Some("127.0.0.1:3000"), true),
                (Some("https://Ferry.Example"), Some("ferry.example"), true),
                (Some("http://localhost:3000/"), Some("localhost:3000"), true),
            ],
        );
    }

    #[test]
    fn other_origins_are_refused() {
        check(
            &[],
            &[
                (Some("http://evil.example"), Some("127.0.0.1:3000"), false),
                (Some("http://127.0.0.1:8080"), Some("127.0.0.1:3000"), false),
                (Some("http://127.0.0.1:3000"), None, false),
                (Some("null"), Some("127.0.0.1:3000"), false),
                (Some(""), Some(""), false),
                (Some("127.0.0.1:3000"), Some("127.0.0.1:3000"), false),
            ],
        );
    }

    #[test]
    fn listed_origins_are_allowed() {
        check(
            &["http://127.0.0.1:8080/", "HTTPS://app.example"],
            &[
                (Some("http://127.0.0.1:8080"), Some("127.0.0.1:3000"), true),
                (Some("https://app.example"), Some("127.0.0.1:3000"), true),
                (Some("http://app.example"), Some("127.0.0.1:3000"), false),
            ],
        );
    }
}
