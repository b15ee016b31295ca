//! `ferry-signaling`: reads its configuration from flags and `FERRY_*` environment variables,
//! serves until Ctrl-C or SIGTERM, and logs to standard error.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use ferry_protocol::IceServer;
use ferry_signaling::banner::Banner;
use ferry_signaling::certs;
use ferry_signaling::names::Machine;
use ferry_signaling::{Config, IceConfig, Limits, Tls, TurnRest, TurnSecret};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tracing_subscriber::EnvFilter;

/// Ferry's signaling server: nicknames, presence, the user list and the WebRTC offer/answer
/// relay for browsers sending files to each other, plus the classic HTTP user API.
///
/// On a loopback address it serves plain HTTP (loopback is a secure context); on any other
/// address it serves HTTPS with a certificate of its own unless given one, because browsers
/// keep the features Ferry saves files with from plain-HTTP pages.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The address to listen on; port 0 picks a free one. Use 0.0.0.0:3000 to let other
    /// machines in.
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// A built app (trunk's dist folder) to serve at / on the same origin as the WebSocket.
    #[arg(long, env = "FERRY_STATIC_DIR")]
    static_dir: Option<PathBuf>,

    /// Seconds a user stays online after their last sign of life.
    #[arg(long, env = "FERRY_PRESENCE_TTL_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    presence_ttl_secs: u64,

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

    /// Print the URLs without QR codes.
    #[arg(long)]
    quiet: bool,

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

/// How the server speaks to browsers, decided from the flags and the listen address.
#[derive(Debug)]
enum Security {
    Plain,
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
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
    if args.relay_only && args.turn_urls.is_empty() && !args.has_static_turn() {
        // Clap's own errors look the same, so this one reads like them.
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--relay-only needs a TURN server to relay through: give --turn-url (with \
                 --turn-secret) or a turn: --ice-server",
            )
            .exit();
    }
    let machine = Machine::local();
    let (tls, fingerprint) = match args.security() {
        Security::Plain => (None, None),
        Security::Files { cert, key } => {
            let identity = certs::from_files(&cert, &key)?;
            let fingerprint = identity.fingerprint();
            (Some(Tls::new(identity)?), Some(fingerprint))
        }
        Security::SelfSigned => {
            let dir = args.data_dir()?;
            let names = machine.certificate_names(args.listen.ip());
            let host = machine.host.as_deref().unwrap_or("this machine");
            let identity = certs::self_signed(&dir, &names, host)
                .with_context(|| format!("making Ferry's certificate in {}", dir.display()))?;
            if identity.new_ca {
                tracing::info!(dir = %dir.display(), "made a new certificate authority");
            }
            if identity.new_server_cert {
                tracing::info!(names = ?names, "issued a server certificate");
            }
            let fingerprint = identity.fingerprint();
            (Some(Tls::new(identity)?), Some(fingerprint))
        }
    };
    let ca_fingerprint = tls.as_ref().and(fingerprint.as_ref()).and_then(|_| {
        tls.as_ref()
            .and_then(Tls::ca_pem)
            .and_then(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
            .map(|der| certs::fingerprint(&der))
    });
    let config = args.config(tls);
    let listener = ferry_signaling::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("could not read the bound address")?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let urls = machine.urls(addr, scheme);
    let banner = Banner {
        ca: ca_fingerprint.map(|ca| (format!("{}ca.crt", urls[0]), ca)),
        urls,
        fingerprint,
        qr: !args.quiet && !addr.ip().is_loopback(),
    };
    print!("{}", banner.render());
    tracing::info!(%addr, scheme, ttl_secs = args.presence_ttl_secs, "listening");
    ferry_signaling::serve(listener, config, shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

impl Args {
    fn security(&self) -> Security {
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

    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => dirs::data_dir()
                .map(|dir| dir.join("ferry"))
                .context("no data directory is known for this user; give --data-dir"),
        }
    }

    fn has_static_turn(&self) -> bool {
        self.ice_servers
            .iter()
            .any(|url| url.starts_with("turn:") || url.starts_with("turns:"))
    }

    fn config(&self, tls: Option<Tls>) -> Config {
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
            allowed_origins: self.allowed_origins.clone(),
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                messages_per_sec: self.messages_per_sec,
                message_burst: self.message_burst,
                max_dropped_messages: self.max_dropped_messages,
                max_connections_per_ip: self.max_connections_per_ip,
                outbound_queue: self.outbound_queue,
            },
            tls,
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
