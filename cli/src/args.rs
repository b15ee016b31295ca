//! What `ferry` can be told on its command line, and the server address it makes of it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferry_protocol::{PairCode, Place, RoomId};
use url::Url;

/// Send files to Ferry's browsers, or receive theirs, from a terminal.
///
/// The bytes go straight between the two ends over WebRTC data channels, block by block
/// checked against BLAKE3 digests; the server only introduces the two ends to each other.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The Ferry server: its page's address, or a room link on it (`https://host/#room=…`).
    #[arg(
        long,
        global = true,
        env = "FERRY_SERVER",
        default_value = "http://127.0.0.1:3000/"
    )]
    pub server: String,
    /// The nickname others see; kept for the next run (a new one is made the first time).
    #[arg(long, global = true, env = "FERRY_NICK")]
    pub nick: Option<String>,
    /// Meet in a private room: its link or its 32-letter id.
    #[arg(long, global = true, conflicts_with = "code")]
    pub room: Option<String>,
    /// Meet in the room a six-digit pairing code names (as another device shows it).
    #[arg(long, global = true)]
    pub code: Option<String>,
    /// Trust the server's certificate when this certificate authority (PEM) signed it, as
    /// Ferry's own CA does (the server serves it at `/ca.crt`).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "fingerprint"
    )]
    pub ca: Option<PathBuf>,
    /// Trust the server's certificate when its SHA-256 fingerprint, or its authority's, is
    /// this one (as the server prints it: `AB:CD:…`).
    #[arg(long, global = true, value_name = "HEX")]
    pub fingerprint: Option<String>,
    /// Print one JSON event per line on stdout instead of progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the nick, the session and the device key are kept (default: the user's config
    /// directory, `ferry/` in it).
    #[arg(long, global = true, env = "FERRY_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// The local address WebRTC binds its UDP sockets to (default: every interface).
    #[arg(long, global = true, value_name = "IP")]
    pub bind: Option<std::net::IpAddr>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offer files and folders to someone; their paths inside each folder are kept.
    Send {
        /// Who gets them (their nickname).
        #[arg(long)]
        to: String,
        /// The files and folders to send.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Wait for an offer, and save what is accepted.
    Receive {
        /// Where received files and folders go.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// Accept without asking.
        #[arg(long)]
        yes: bool,
        /// Take only offers from this nickname.
        #[arg(long)]
        from: Option<String>,
        /// Stop after this many offers were answered (default: one).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
    },
    /// List who is online in the lobby or the room.
    Who,
}

/// Why the command line cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    /// The server is not an http(s) address.
    #[error("--server {0:?} is not a web address: give one like https://ferry.example/")]
    Server(String),
    /// The room is neither a link nor an id.
    #[error("--room {0:?} is not a room: give its link (…/#room=…) or its 32-letter id")]
    Room(String),
    /// The code is not six digits.
    #[error("--code {0:?} is not a pairing code: it has six digits, like 123 456")]
    Code(String),
}

/// Where to reach the server, and which place to join there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The page's origin, `https://host[:port]`.
    pub origin: Url,
    /// The WebSocket, `wss://host[:port]/ws`.
    pub socket: Url,
    /// The lobby, a room or a pairing code.
    pub place: Place,
}

impl Common {
    /// The server and the place these options name.
    ///
    /// # Errors
    /// When the server, the room or the code cannot be read.
    pub fn endpoint(&self) -> Result<Endpoint, ArgError> {
        let bad_server = || ArgError::Server(self.server.clone());
        let page = Url::parse(&self.server).map_err(|_| bad_server())?;
        let secure = match page.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad_server()),
        };
        if page.host_str().is_none() {
            return Err(bad_server());
        }
        let mut origin = page.clone();
        origin.set_path("/");
        origin.set_query(None);
        origin.set_fragment(None);
        let mut socket = origin.clone();
        socket
            .set_scheme(if secure { "wss" } else { "ws" })
            .map_err(|()| bad_server())?;
        socket.set_path("/ws");
        let linked = page
            .fragment()
            .map(ferry_core::place::room_in)
            .transpose()
            .map_err(|_| ArgError::Room(self.server.clone()))?
            .flatten();
        let place = if let Some(code) = &self.code {
            Place::Code(PairCode::parse(code).map_err(|_| ArgError::Code(code.clone()))?)
        } else if let Some(room) = &self.room {
            Place::Room(parse_room(room)?)
        } else if let Some(room) = linked {
            Place::Room(room)
        } else {
            Place::Lobby
        };
        Ok(Endpoint {
            origin,
            socket,
            place,
        })
    }
}

/// A room given as its link or as its id.
fn parse_room(raw: &str) -> Result<RoomId, ArgError> {
    let refused = || ArgError::Room(raw.to_owned());
    if let Some((_, fragment)) = raw.split_once('#') {
        return ferry_core::place::room_in(fragment)
            .map_err(|_| refused())?
            .ok_or_else(refused);
    }
    RoomId::parse(raw.trim()).map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(args: &[&str]) -> Common {
        let mut all = vec!["ferry"];
        all.extend_from_slice(args);
        all.push("who");
        Cli::try_parse_from(all).expect("arguments parse").common
    }

    const ROOM: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_server_gives_the_origin_and_the_socket() {
        let endpoint = common(&["--server", "https://ferry.example:8443/some/page?x=1"])
            .endpoint()
            .unwrap();
        assert_eq!(endpoint.origin.as_str(), "https://ferry.example:8443/");
        assert_eq!(endpoint.socket.as_str(), "wss://ferry.example:8443/ws");
        assert_eq!(endpoint.place, Place::Lobby);
        let plain = common(&["--server", "http://127.0.0.1:3000"])
            .endpoint()
            .unwrap();
        assert_eq!(plain.socket.as_str(), "ws://127.0.0.1:3000/ws");
    }

    #[test]
    fn a_room_comes_from_a_link_an_id_or_the_server_address() {
        let link = format!("https://ferry.example/#room={ROOM}");
        let from_link = common(&["--room", &link]).endpoint().unwrap();
        assert_eq!(from_link.place, Place::Room(RoomId::parse(ROOM).unwrap()));
        let from_id = common(&["--room", ROOM]).endpoint().unwrap();
        assert_eq!(from_id.place, from_link.place);
        let from_server = common(&["--server", &link]).endpoint().unwrap();
        assert_eq!(from_server.place, from_link.place);
        assert_eq!(from_server.socket.as_str(), "wss://ferry.example/ws");
    }

    #[test]
    fn a_code_is_six_digits_however_grouped() {
        let endpoint = common(&["--code", "123 456"]).endpoint().unwrap();
        assert_eq!(
            endpoint.place,
            Place::Code(PairCode::parse("123456").unwrap())
        );
    }

    #[test]
    fn bad_places_and_servers_are_refused_with_what_was_given() {
        let cases: [(&[&str], &str); 5] = [
            (&["--server", "ftp://host/"], "not a web address"),
            (&["--server", "not a url"], "not a web address"),
            (&["--room", "abc"], "not a room"),
            (&["--room", "https://h/#room=xyz"], "not a room"),
            (&["--code", "12345"], "not a pairing code"),
        ];
        for (args, expected) in cases {
            let error = common(args).endpoint().unwrap_err().to_string();
            assert!(error.contains(expected), "{args:?} gave {error:?}");
            assert!(error.contains(args[1]), "{error:?} names {:?}", args[1]);
        }
    }

    #[test]
    fn send_needs_someone_and_something() {
        assert!(Cli::try_parse_from(["ferry", "send", "a.txt"]).is_err());
        assert!(Cli::try_parse_from(["ferry", "send", "--to", "bo"]).is_err());
        let cli = Cli::try_parse_from(["ferry", "send", "--to", "bo", "a", "b/"]).unwrap();
        let Command::Send { to, paths } = cli.command else {
            panic!("not a send")
        };
        assert_eq!(to, "bo");
        assert_eq!(paths, [PathBuf::from("a"), PathBuf::from("b/")]);
    }

    #[test]
    fn receive_defaults_to_here_asking_once() {
        let cli = Cli::try_parse_from(["ferry", "receive"]).unwrap();
        let Command::Receive {
            dir,
            yes,
            from,
            count,
        } = cli.command
        else {
            panic!("not a receive")
        };
        assert_eq!(
            (dir, yes, from, count),
            (PathBuf::from("."), false, None, 1)
        );
        assert!(Cli::try_parse_from(["ferry", "receive", "--count", "0"]).is_err());
    }
}
