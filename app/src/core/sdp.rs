//! What Ferry reads out of a session description: which peer connection it comes from.

/// The session id of an SDP offer or answer: the second field of its `o=` line, drawn at
/// random by each new peer connection and kept through its renegotiations. An offer with
/// another session id than the connection's remote description comes from a new connection
/// of the other browser (it made one after its old one broke), which the old one cannot take.
pub fn session_id(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.strip_prefix("o="))
        .and_then(|origin| origin.split_whitespace().nth(1))
}

#[cfg(test)]
mod tests {
    use super::*;

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
