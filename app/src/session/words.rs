//! What the session says to people: announcements of transfer news, and why joining (or a
//! request in a room) failed.

use ferry_protocol::ErrorCode;

/// The banner while the connection to the server is down and being made again.
pub(super) const CONNECTION_LOST: &str = "Connection to the server lost — reconnecting…";

/// The banner while the server cannot be reached at all, before this page ever joined: the
/// device is offline, or the server is down; the page keeps trying.
pub(super) const OFFLINE: &str = "Offline — can't reach the Ferry server; reconnecting…";

/// The banner while the service cannot take a join (its shared store is restarting).
pub(super) const RESTARTING: &str = "The service is restarting, retrying…";

/// What one change of rows says: each file and its news, or for many files at once (a
/// folder) how many reached each status.
pub(super) fn announce(news: &[(String, String)]) -> String {
    if news.len() <= 3 {
        let each: Vec<String> = news
            .iter()
            .map(|(name, status)| format!("{name}: {status}"))
            .collect();
        return each.join("; ");
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, status) in news {
        match counts.iter_mut().find(|(seen, _)| seen == status) {
            Some((_, count)) => *count += 1,
            None => counts.push((status, 1)),
        }
    }
    let each: Vec<String> = counts
        .iter()
        .map(|(status, count)| format!("{count} files: {status}"))
        .collect();
    each.join("; ")
}

/// Capitalizes a message and ends it with a full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    // The messages are English and begin with an ASCII letter; Unicode's case tables would
    // weigh on the wasm for nothing.
    let first = chars.next().map(|c| c.to_ascii_uppercase().to_string());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// What to tell the user when joining fails.
pub(super) fn refusal(code: ErrorCode, message: &str, nick: &str) -> String {
    match code {
        ErrorCode::NickTaken => {
            format!("The nickname “{nick}” is taken: someone online uses it. Try another.")
        }
        ErrorCode::InvalidNick => format!("That nickname won't do: {message}."),
        ErrorCode::TooManySessions => {
            "Too many people from your network are on this server right now. Try again in a \
             minute."
                .to_owned()
        }
        ErrorCode::UnsupportedVersion => {
            "This page is out of date. Reload it to get the current Ferry.".to_owned()
        }
        ErrorCode::WrongCode => "No room has that code: it may be mistyped, used already \
             or expired. Check the digits, or ask for a new code."
            .to_owned(),
        ErrorCode::TooManyTries | ErrorCode::RoomFull | ErrorCode::NoLobby | ErrorCode::NoCode => {
            sentence(message)
        }
        _ => format!("The server refused: {message}."),
    }
}
