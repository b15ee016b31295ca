//! Everything the server can be told at start-up, with the defaults a public server on the
//! open internet should have.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ice::IceConfig;
use ferry_protocol::LobbyScope;

use crate::inbound::SignalLimits;
use crate::pairing::PairLimits;
use crate::registry::HttpLimits;
use crate::transport::Tls;

/// Everything the server can be told at start-up.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a user stays online after their last sign of life; also how long a dropped
    /// connection's session waits to be reclaimed with its token.
    pub presence_ttl: Duration,
    /// A built app to serve at `/` (with `index.html` for unknown paths), at the same origin
    /// as the WebSocket.
    pub static_dir: Option<PathBuf>,
    /// What every browser is told about ICE servers in its welcome.
    pub ice: IceConfig,
    /// The addresses people reach the server at when it is not the listen address, such as
    /// `https://ferry.example` behind a reverse proxy: their pages may open a WebSocket.
    pub public_urls: Vec<String>,
    /// Page origins, besides the server's own, allowed to open a WebSocket, such as
    /// `http://127.0.0.1:8080` for the app under `trunk serve`.
    pub allowed_origins: Vec<String>,
    /// Who meets in the lobby, or that there is none and people meet in private rooms only.
    pub lobby: LobbyScope,
    /// Whether a reverse proxy in front says where clients come from: the client address is
    /// then the last one in `X-Forwarded-For`, as the proxy saw it. Only for a server that
    /// nothing reaches except through that proxy: anyone else could claim any address.
    pub trust_proxy: bool,
    /// Protection against misbehaving clients.
    pub limits: Limits,
    /// HTTPS and `wss:` with this certificate; plain HTTP without.
    pub tls: Option<Tls>,
    /// Rewrites (or, returning `None`, drops) every relayed ICE candidate line, to put an
    /// emulated network between two browsers in tests and benchmarks; `None` in production.
    pub candidates: Option<CandidateFilter>,
    /// The Redis (`redis://HOST:PORT/`) every instance of one service shares; `None` for an
    /// instance alone, which keeps everything in its memory.
    pub redis: Option<String>,
    /// How long an instance's sessions stay listed elsewhere, and their nicks claimed, after
    /// the instance stops refreshing them (it died); refreshed three times as often.
    pub instance_ttl: Duration,
}

/// A rewrite of relayed ICE candidate lines; see [`Config::candidates`].
#[derive(Clone)]
pub struct CandidateFilter(pub Arc<Rewrite>);

/// Rewrites one candidate line, or drops it with `None`.
pub type Rewrite = dyn Fn(&str) -> Option<String> + Send + Sync;

impl fmt::Debug for CandidateFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CandidateFilter(…)")
    }
}

/// Limits that keep one client from hurting the others; each is a flag of the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest WebSocket message accepted, in bytes; a larger one closes the connection
    /// with 1009. An SDP offer fits in a few KiB.
    pub max_message_bytes: usize,
    /// Messages a connection may send per second, on average.
    pub messages_per_sec: u32,
    /// Messages a connection may send at once before the rate applies.
    pub message_burst: u32,
    /// Messages dropped for the rate before the connection is closed with 1008; forgiven once
    /// the client slows down enough for its burst allowance to refill.
    pub max_dropped_messages: u32,
    /// Open connections of every kind (page loads, API calls, WebSockets, connections that
    /// have said nothing yet) allowed from one IP address; more get 429.
    pub max_connections_per_ip: usize,
    /// Open connections in all; more get 503. Kept below the process's file limit, and the
    /// last [`crate::connections::JOIN_RESERVE`] of them are kept from new WebSockets, so a
    /// health probe gets through when joins are refused.
    pub max_connections: usize,
    /// Bytes queued for one client before it counts as not reading and is disconnected.
    pub outbound_bytes: usize,
    /// How long a new connection has for its TLS handshake and each request for its headers;
    /// also how long an idle keep-alive connection stays open.
    pub header_timeout: Duration,
    /// How long an upgraded WebSocket has to send its `join`.
    pub join_timeout: Duration,
    /// How long a joined WebSocket may stay silent (no message, no ping, no pong) before it
    /// is closed; its session still waits the time-to-live for a reconnect.
    pub silence_timeout: Duration,
    /// Requests to the classic HTTP API per second from one address, on average.
    pub http_requests_per_sec: u32,
    /// Requests to the classic HTTP API from one address at once before the rate applies.
    pub http_request_burst: u32,
    /// How many classic HTTP registrations there may be.
    pub http_registrations: HttpLimits,
    /// Sessions, live and lingering (dropped without a goodbye, waiting to be reclaimed), from
    /// one address (an IPv6 /64); more are refused.
    pub max_sessions_per_ip: usize,
    /// How long a session whose connection dropped without a goodbye stays listed to others;
    /// after it, they hear it left, though it can be reclaimed until its time-to-live ends.
    pub linger_grace: Duration,
    /// What others may send one client through the server.
    pub signals: SignalLimits,
    /// How many people fit in one private room.
    pub room_size: usize,
    /// How pairing codes are bounded.
    pub pairing: PairLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            presence_ttl: Duration::from_secs(120),
            static_dir: None,
            ice: IceConfig::default(),
            public_urls: Vec::new(),
            allowed_origins: Vec::new(),
            lobby: LobbyScope::Everyone,
            trust_proxy: false,
            limits: Limits::default(),
            tls: None,
            candidates: None,
            redis: None,
            instance_ttl: crate::cluster::INSTANCE_TTL,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            messages_per_sec: 50,
            message_burst: 100,
            max_dropped_messages: 100,
            // A page load opens a handful of connections beside its WebSocket, and an office
            // behind one NAT shares an address.
            max_connections_per_ip: 64,
            max_connections: 4096,
            // Room for a welcome listing some 50,000 users, or a few hundred signals.
            outbound_bytes: 4 << 20,
            header_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            // Two and a half heartbeats of the default 120 s time-to-live.
            silence_timeout: Duration::from_secs(75),
            http_requests_per_sec: 5,
            http_request_burst: 20,
            http_registrations: HttpLimits::default(),
            // As many as connections, which an office behind one address shares.
            max_sessions_per_ip: 64,
            // Long enough for a reconnect after a Wi-Fi hiccup or a moved laptop, short enough
            // that the list is soon true again.
            linger_grace: Duration::from_secs(10),
            signals: SignalLimits::default(),
            // A team's worth: a room is for meeting the people you mean.
            room_size: 20,
            pairing: PairLimits::default(),
        }
    }
}
