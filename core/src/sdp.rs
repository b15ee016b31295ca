//! What Ferry reads out of a session description: which peer connection it comes from, and
//! which certificate its side holds.

/// The session id of an SDP offer or answer: the second field of its `o=` line, drawn at
/// random by each new peer connection and kept through its renegotiations. An offer with
/// another session id than the connection's remote description comes from a new connection
/// of the other browser (it made one after its old one broke), which the old one cannot take.
pub fn session_id(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.strip_prefix("o="))
        .and_then(|origin| origin.split_whitespace().nth(1))
}

/// The DTLS certificate fingerprints of a session description, as one string that is the same
/// however the browser wrote them: each `a=fingerprint:` line as "algorithm HEX" (algorithm
/// lowercase, digits uppercase), the distinct ones sorted and joined by ", ". `None` when it
/// has none. The browser checks the certificate the other side presents against these lines,
/// so they name the key the connection really runs with.
pub fn fingerprint(sdp: &str) -> Option<String> {
    let mut prints: Vec<String> = sdp
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .filter_map(|value| {
            let (algorithm, digest) = value.trim().split_once(' ')?;
            Some(format!(
                "{} {}",
                algorithm.to_ascii_lowercase(),
                digest.trim().to_ascii_uppercase()
            ))
        })
        .collect();
    prints.sort();
    prints.dedup();
    (!prints.is_empty()).then(|| prints.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_reads_the_same_however_it_is_written() {
        let chromium = "v=0\r\na=fingerprint:sha-256 ab:CD:01\r\nm=application 9\r\n\
                        a=fingerprint:sha-256 AB:CD:01\r\n";
        let firefox = "v=0\r\na=fingerprint:SHA-256 AB:CD:01\r\n";
        assert_eq!(fingerprint(chromium).as_deref(), Some("sha-256 AB:CD:01"));
        assert_eq!(fingerprint(chromium), fingerprint(firefox));
        assert_ne!(
            fingerprint(firefox),
            fingerprint("a=fingerprint:sha-256 AB:CD:02\r\n")
        );
        assert_eq!(fingerprint("v=0\r\ns=-\r\n"), None);
    }

    #[test]
    fn the_session_id_is_read_from_the_origin_line() {
        let offer = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        assert_eq!(session_id(offer), Some("4611731400430051336"));
        let renegotiated = offer.replace(" 2 IN", " 3 IN");
        assert_eq!(session_id(&renegotiated), session_id(offer));
        assert_eq!(session_id("v=0\r\ns=-\r\n"), None);
        assert_eq!(session_id("o=-\r\n"), None);
    }
}
