//! `ferry-signaling`: reads its configuration from flags and `FERRY_*` environment variables,
//! serves until Ctrl-C or SIGTERM, and logs to standard error.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferry_protocol::IceServer;
use ferry_signaling::{Config, Limits};
use tracing_subscriber::EnvFilter;

/// Ferry's signaling server: nicknames, presence, the user list and the WebRTC offer/answer
/// relay for browsers sending files to each other, plus the classic HTTP user API.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The address to listen on; port 0 picks a free one.
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// A built app (trunk's dist folder) to serve at / on the same origin as the WebSocket.
    #[arg(long, env = "FERRY_STATIC_DIR")]
    static_dir: Option<PathBuf>,

    /// Seconds a user stays online after their last sign of life.
    #[arg(long, env = "FERRY_PRESENCE_TTL_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    presence_ttl_secs: u64,

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

    /// Open WebSockets allowed from one IP address.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,

    /// Messages queued for one client before it counts as not reading and is disconnected.
    #[arg(long, env = "FERRY_OUTBOUND_QUEUE", default_value_t = Limits::default().outbound_queue)]
    outbound_queue: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let config = args.config();
    let listener = ferry_signaling::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("could not read the bound address")?;
    println!("Ferry is running at http://{addr}/ — open it in two browser tabs.");
    tracing::info!(%addr, ttl_secs = args.presence_ttl_secs, "listening");
    ferry_signaling::serve(listener, config, shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

impl Args {
    fn config(&self) -> Config {
        let ice_servers = if self.ice_servers.is_empty() {
            Vec::new()
        } else {
            vec![IceServer {
                urls: self.ice_servers.clone(),
                username: self.turn_username.clone(),
                credential: self.turn_credential.clone(),
            }]
        };
        Config {
            presence_ttl: Duration::from_secs(self.presence_ttl_secs),
            static_dir: self.static_dir.clone(),
            ice_servers,
            allowed_origins: self.allowed_origins.clone(),
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                messages_per_sec: self.messages_per_sec,
                message_burst: self.message_burst,
                max_dropped_messages: self.max_dropped_messages,
                max_connections_per_ip: self.max_connections_per_ip,
                outbound_queue: self.outbound_queue,
            },
        }
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM. Should a handler fail to install, that signal is
/// logged and ignored rather than stopping the server at once.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
