//! The command line: every flag, with a `FERRY_*` environment variable for each, and what
//! they make of the server's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferry_protocol::{IceServer, LobbyScope};
use ferry_signaling::{
    Config, HttpLimits, IceConfig, Limits, PairLimits, SignalLimits, Tls, TurnRest, TurnSecret,
};

/// Ferry's signaling server: nicknames, presence, the user list and the WebRTC offer/answer
/// relay for browsers sending files to each other, plus the classic HTTP user API.
///
/// On a loopback address it serves plain HTTP (loopback is a secure context); on any other
/// address it serves HTTPS with a certificate of its own unless given one, because browsers
/// keep the features Ferry saves files with from plain-HTTP pages.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// The address to listen on; port 0 picks a free one. Use 0.0.0.0:3000 to let other
    /// machines in.
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// A built app (trunk's dist folder) to serve at / on the same origin as the WebSocket.
    #[arg(long, env = "FERRY_STATIC_DIR")]
    static_dir: Option<PathBuf>,

    /// Seconds a user stays online after their last sign of life.
    #[arg(long, env = "FERRY_PRESENCE_TTL_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub presence_ttl_secs: u64,

    /// Serve HTTPS with this certificate chain (PEM), e.g. one from Let's Encrypt.
    #[arg(long, env = "FERRY_TLS_CERT", requires = "tls_key", conflicts_with_all = ["self_signed", "plain_http"])]
    tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "FERRY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS with Ferry's own certificate, issued by a certificate authority Ferry makes
    /// once and keeps in --data-dir (trust it from /ca.crt). The default off loopback.
    #[arg(long, conflicts_with = "plain_http")]
    self_signed: bool,

    /// Serve plain HTTP even off loopback, for a reverse proxy that does TLS in front.
    #[arg(long)]
    plain_http: bool,

    /// Where Ferry keeps its certificate authority [default: the XDG data directory, e.g.
    /// ~/.local/share/ferry].
    #[arg(long, env = "FERRY_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Share nicks, presence and signals with every instance given the same Redis
    /// (`redis://HOST:PORT/`), so that they form one service behind a load balancer. Without
    /// it the server keeps everything in its own memory.
    #[arg(long, env = "FERRY_REDIS", value_name = "URL")]
    redis: Option<String>,

    /// With --redis: how long, in seconds, an instance that died stays listed elsewhere and
    /// keeps its users' nicks; its sessions are refreshed three times as often.
    #[arg(long, env = "FERRY_INSTANCE_TTL_SECS", default_value_t = ferry_signaling::INSTANCE_TTL.as_secs(), value_parser = clap::value_parser!(u64).range(3..))]
    instance_ttl_secs: u64,

    /// Who meets in the lobby: everyone on the server, people whose connections come from
    /// the same public address (every private, loopback and link-local address counting as
    /// one network), or nobody (private rooms only).
    #[arg(long, env = "FERRY_LOBBY", value_enum, default_value_t = Lobby::Everyone)]
    lobby: Lobby,

    /// A reverse proxy in front says where clients come from: take the client's address from
    /// the last X-Forwarded-For entry. Only when nothing reaches the server but that proxy.
    #[arg(long, env = "FERRY_TRUST_PROXY")]
    trust_proxy: bool,

    /// People one private room takes.
    #[arg(long, env = "FERRY_ROOM_SIZE", default_value_t = Limits::default().room_size, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    room_size: usize,

    /// Wrong pairing codes one address (an IPv6 /64) may try per minute.
    #[arg(long, env = "FERRY_PAIR_TRIES_PER_ADDRESS", default_value_t = PairLimits::default().tries_per_address)]
    pair_tries_per_address: usize,

    /// Wrong pairing codes everyone together may try per minute; with a 10-minute code, an
    /// attacker finds a given code with probability at most 10 × this / 1,000,000.
    #[arg(long, env = "FERRY_PAIR_TRIES_TOTAL", default_value_t = PairLimits::default().tries_total)]
    pair_tries_total: usize,

    /// Print the URLs without QR codes.
    #[arg(long)]
    pub quiet: bool,

    /// A STUN or TURN server URL for the browsers, such as stun:stun.example:3478; repeat it
    /// for several. On one LAN none is needed.
    #[arg(long = "ice-server", env = "FERRY_ICE_SERVERS", value_delimiter = ',')]
    ice_servers: Vec<String>,

    /// The user name for the TURN servers among --ice-server.
    #[arg(long, env = "FERRY_TURN_USERNAME")]
    turn_username: Option<String>,

    /// The credential for the TURN servers among --ice-server.
    #[arg(long, env = "FERRY_TURN_CREDENTIAL", hide_env_values = true)]
    turn_credential: Option<String>,

    /// A TURN server (turn: or turns: URL) that checks short-lived credentials made with
    /// --turn-secret, like coturn's use-auth-secret; repeat it for several.
    #[arg(
        long = "turn-url",
        env = "FERRY_TURN_URLS",
        value_delimiter = ',',
        requires = "turn_secret",
        value_parser = turn_url
    )]
    turn_urls: Vec<String>,

    /// The secret shared with the --turn-url servers; never logged, never sent to a browser.
    #[arg(
        long,
        env = "FERRY_TURN_SECRET",
        hide_env_values = true,
        requires = "turn_urls"
    )]
    turn_secret: Option<String>,

    /// How long each browser's TURN credentials work, in seconds; they are renewed before.
    #[arg(long, env = "FERRY_TURN_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    turn_ttl_secs: u64,

    /// Every browser uses the TURN relay only, so no peer ever learns another's IP address.
    #[arg(long, env = "FERRY_RELAY_ONLY")]
    relay_only: bool,

    /// The address people open when it is not the listen address, such as
    /// https://ferry.example behind a reverse proxy; its pages may open WebSockets. Repeat it
    /// for several.
    #[arg(long = "public-url", env = "FERRY_PUBLIC_URLS", value_delimiter = ',')]
    public_urls: Vec<String>,

    /// A page origin, besides the server's own, allowed to open a WebSocket, such as
    /// http://127.0.0.1:8080 for `trunk serve`; repeat it for several.
    #[arg(
        long = "allowed-origin",
        env = "FERRY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// The largest WebSocket message accepted, in bytes.
    #[arg(long, env = "FERRY_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,

    /// Messages one connection may send per second, on average.
    #[arg(long, env = "FERRY_MESSAGES_PER_SEC", default_value_t = Limits::default().messages_per_sec)]
    messages_per_sec: u32,

    /// Messages one connection may send at once before the rate applies.
    #[arg(long, env = "FERRY_MESSAGE_BURST", default_value_t = Limits::default().message_burst)]
    message_burst: u32,

    /// Messages dropped for the rate before a flooding connection is closed.
    #[arg(long, env = "FERRY_MAX_DROPPED_MESSAGES", default_value_t = Limits::default().max_dropped_messages)]
    max_dropped_messages: u32,

    /// Open connections of every kind allowed from one IP address.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,

    /// Open connections in all [default: the process's file limit, less some to spare].
    #[arg(long, env = "FERRY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,

    /// Bytes queued for one client before it counts as not reading and is disconnected.
    #[arg(long, env = "FERRY_OUTBOUND_BYTES", default_value_t = Limits::default().outbound_bytes)]
    outbound_bytes: usize,

    /// Seconds a new connection has for its TLS handshake and each request for its headers;
    /// also how long an idle keep-alive connection stays open.
    #[arg(long, env = "FERRY_HEADER_TIMEOUT_SECS", default_value_t = Limits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,

    /// Seconds an upgraded WebSocket has to send its join.
    #[arg(long, env = "FERRY_JOIN_TIMEOUT_SECS", default_value_t = Limits::default().join_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    join_timeout_secs: u64,

    /// Seconds a joined WebSocket may send nothing (no heartbeat, no ping) before it is
    /// closed; never less than two heartbeats.
    #[arg(long, env = "FERRY_SILENCE_TIMEOUT_SECS", default_value_t = Limits::default().silence_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    silence_timeout_secs: u64,

    /// Requests to the classic HTTP API per second from one address, on average.
    #[arg(long, env = "FERRY_HTTP_REQUESTS_PER_SEC", default_value_t = Limits::default().http_requests_per_sec)]
    http_requests_per_sec: u32,

    /// Requests to the classic HTTP API from one address at once before the rate applies.
    #[arg(long, env = "FERRY_HTTP_REQUEST_BURST", default_value_t = Limits::default().http_request_burst)]
    http_request_burst: u32,

    /// Classic HTTP registrations one address may hold.
    #[arg(long, env = "FERRY_MAX_REGISTRATIONS_PER_IP", default_value_t = HttpLimits::default().per_ip)]
    max_registrations_per_ip: usize,

    /// Classic HTTP registrations in all.
    #[arg(long, env = "FERRY_MAX_REGISTRATIONS", default_value_t = HttpLimits::default().total)]
    max_registrations: usize,

    /// Sessions from one address (an IPv6 /64), counting those whose connection dropped and
    /// that wait to be reclaimed.
    #[arg(long, env = "FERRY_MAX_SESSIONS_PER_IP", default_value_t = Limits::default().max_sessions_per_ip)]
    max_sessions_per_ip: usize,

    /// Seconds a session whose connection dropped without a goodbye stays listed to others;
    /// it can be reclaimed until its time-to-live ends.
    #[arg(long, env = "FERRY_LINGER_GRACE_SECS", default_value_t = Limits::default().linger_grace.as_secs())]
    linger_grace_secs: u64,

    /// Bytes of one sender's signals that may wait to be written to one client; more are
    /// refused to the sender.
    #[arg(long, env = "FERRY_SIGNAL_BYTES_WAITING_PER_SENDER", default_value_t = SignalLimits::default().waiting_per_sender)]
    signal_bytes_waiting_per_sender: usize,

    /// Bytes of everyone's signals that may wait to be written to one client.
    #[arg(long, env = "FERRY_SIGNAL_BYTES_WAITING", default_value_t = SignalLimits::default().waiting)]
    signal_bytes_waiting: usize,

    /// Bytes per second one sender may signal one client, on average (twice as many at once).
    #[arg(long, env = "FERRY_SIGNAL_BYTES_PER_SEC_PER_SENDER", default_value_t = SignalLimits::default().per_sec_per_sender)]
    signal_bytes_per_sec_per_sender: u32,

    /// Bytes per second everyone may signal one client, on average (twice as many at once).
    #[arg(long, env = "FERRY_SIGNAL_BYTES_PER_SEC", default_value_t = SignalLimits::default().per_sec)]
    signal_bytes_per_sec: u32,
}

/// Who meets in the lobby (`--lobby`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Lobby {
    /// Everyone on the server.
    Everyone,
    /// People from the same public address.
    Network,
    /// Nobody: private rooms only.
    Off,
}

/// How the server speaks to browsers, decided from the flags and the listen address.
#[derive(Debug)]
pub enum Security {
    /// Plain HTTP.
    Plain,
    /// HTTPS with a certificate from files.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// HTTPS with Ferry's own certificate authority.
    SelfSigned,
}

impl Args {
    /// How to speak to browsers.
    pub fn security(&self) -> Security {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Security::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if self.self_signed => Security::SelfSigned,
            _ if self.plain_http => Security::Plain,
            // Off loopback, plain HTTP is not a secure context: no private file system and no
            // save picker, so receivers could only keep files in memory.
            _ if self.listen.ip().is_loopback() => Security::Plain,
            _ => Security::SelfSigned,
        }
    }

    /// Where Ferry keeps its certificate authority.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => dirs::data_dir()
                .map(|dir| dir.join("ferry"))
                .context("no data directory is known for this user; give --data-dir"),
        }
    }

    /// Whether `--relay-only` was asked for without any relay to go through.
    pub fn relay_only_without_relay(&self) -> bool {
        let static_turn = self
            .ice_servers
            .iter()
            .any(|url| url.starts_with("turn:") || url.starts_with("turns:"));
        self.relay_only && self.turn_urls.is_empty() && !static_turn
    }

    /// The server's configuration, with `tls`, at most `max_connections` connections when
    /// none was asked for.
    pub fn config(&self, tls: Option<Tls>, max_connections: usize) -> Config {
        let fixed = if self.ice_servers.is_empty() {
            Vec::new()
        } else {
            vec![IceServer {
                urls: self.ice_servers.clone(),
                username: self.turn_username.clone(),
                credential: self.turn_credential.clone(),
            }]
        };
        let turn = self.turn_secret.as_ref().map(|secret| TurnRest {
            urls: self.turn_urls.clone(),
            secret: TurnSecret::new(secret.clone()),
            ttl: Duration::from_secs(self.turn_ttl_secs),
        });
        Config {
            presence_ttl: Duration::from_secs(self.presence_ttl_secs),
            static_dir: self.static_dir.clone(),
            ice: IceConfig {
                fixed,
                turn,
                relay_only: self.relay_only,
            },
            public_urls: self.public_urls.clone(),
            allowed_origins: self.allowed_origins.clone(),
            lobby: match self.lobby {
                Lobby::Everyone => LobbyScope::Everyone,
                Lobby::Network => LobbyScope::Network,
                Lobby::Off => LobbyScope::Off,
            },
            trust_proxy: self.trust_proxy,
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                messages_per_sec: self.messages_per_sec,
                message_burst: self.message_burst,
                max_dropped_messages: self.max_dropped_messages,
                max_connections_per_ip: self.max_connections_per_ip,
                max_connections: self
                    .max_connections
                    .map_or(max_connections, |asked| asked.min(max_connections)),
                outbound_bytes: self.outbound_bytes,
                header_timeout: Duration::from_secs(self.header_timeout_secs),
                join_timeout: Duration::from_secs(self.join_timeout_secs),
                silence_timeout: Duration::from_secs(self.silence_timeout_secs),
                http_requests_per_sec: self.http_requests_per_sec,
                http_request_burst: self.http_request_burst,
                http_registrations: HttpLimits {
                    per_ip: self.max_registrations_per_ip,
                    total: self.max_registrations,
                },
                max_sessions_per_ip: self.max_sessions_per_ip,
                linger_grace: Duration::from_secs(self.linger_grace_secs),
                signals: SignalLimits {
                    waiting_per_sender: self.signal_bytes_waiting_per_sender,
                    waiting: self.signal_bytes_waiting,
                    per_sec_per_sender: self.signal_bytes_per_sec_per_sender,
                    per_sec: self.signal_bytes_per_sec,
                },
                room_size: self.room_size,
                pairing: PairLimits {
                    tries_per_address: self.pair_tries_per_address,
                    tries_total: self.pair_tries_total,
                    ..PairLimits::default()
                },
            },
            tls,
            candidates: None,
            redis: self.redis.clone(),
            instance_ttl: Duration::from_secs(self.instance_ttl_secs),
        }
    }
}

/// Accepts only `turn:` and `turns:` URLs for --turn-url.
fn turn_url(url: &str) -> Result<String, String> {
    if url.starts_with("turn:") || url.starts_with("turns:") {
        Ok(url.to_owned())
    } else {
        Err(format!("{url:?} is not a turn: or turns: URL"))
    }
}
