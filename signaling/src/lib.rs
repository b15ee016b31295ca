//! Ferry's signaling server: browsers join with a nickname, see who else is online and relay
//! WebRTC offers, answers and ICE candidates to each other; file bytes never pass through here.
//!
//! The same server answers the classic HTTP user API (`/?username=…`, `/?friends=…`,
//! `/?listUsers=true`) in the XML shape of Adobe's reg.cgi, and can serve the built app.
//! [`bind`] and [`serve`] are separate so tests can bind `127.0.0.1:0`; [`app`] builds the
//! router alone for `oneshot` tests.

#![forbid(unsafe_code)]

pub mod banner;
pub mod certs;
mod classic;
pub mod ice;
pub mod names;
mod origin;
mod presence;
mod rate;
mod registry;
mod transport;
mod ws;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub use crate::ice::{IceConfig, TurnRest, TurnSecret};
use crate::registry::Registry;
pub use crate::transport::Tls;

/// How long `serve` waits, after shutdown was asked for, for connections to close before it
/// returns anyway. Each WebSocket gets [`ws::CLOSE_GRACE`] for its close handshake, so this
/// only matters for a connection that is stuck.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

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
    /// Page origins, besides the server's own, allowed to open a WebSocket, such as
    /// `http://127.0.0.1:8080` for the app under `trunk serve`.
    pub allowed_origins: Vec<String>,
    /// Protection against misbehaving clients.
    pub limits: Limits,
    /// HTTPS and `wss:` with this certificate; plain HTTP without.
    pub tls: Option<Tls>,
}

/// Limits that keep one client from hurting the others.
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
    /// Open WebSockets allowed from one IP address; more get 429 before the upgrade.
    pub max_connections_per_ip: usize,
    /// Messages queued for one client before it counts as not reading and is disconnected.
    pub outbound_queue: usize,
}

/// The server's shared state: the registry behind one lock, the configuration, and what
/// shutdown needs.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    registry: Mutex<Registry>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    static_files: Option<ServeDir<ServeFile>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            presence_ttl: Duration::from_secs(120),
            static_dir: None,
            ice: IceConfig::default(),
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            tls: None,
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
            max_connections_per_ip: 32,
            outbound_queue: 1024,
        }
    }
}

impl AppState {
    /// State for a server with `config` and nobody online yet.
    pub fn new(config: Config) -> Self {
        let registry = Registry::new(
            config.presence_ttl,
            config.ice.clone(),
            heartbeat_secs(config.presence_ttl),
        );
        let static_files = config
            .static_dir
            .as_ref()
            .map(|dir| ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))));
        Self {
            shared: Arc::new(Shared {
                config,
                registry: Mutex::new(registry),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                static_files,
            }),
        }
    }

    fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Locks the registry. A panic while it was held cannot leave it half-updated in a way
    /// that matters more than stopping the whole server would, so a poisoned lock is used as is.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    fn tasks(&self) -> &TaskTracker {
        &self.shared.tasks
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Binds the listening socket; `127.0.0.1:0` picks a free port. Tokio sets `SO_REUSEADDR`,
/// so a restarted server can bind the same port again at once.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves on `listener` until `shutdown` resolves, then closes every WebSocket with 1001
/// (going away) and returns promptly, freeing the port.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(config);
    state.tasks().spawn(sweep(state.clone()));
    let token = state.shutdown().clone();
    let signal = {
        let token = token.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down");
            token.cancel();
        }
    };
    // Accepting stops on the token, which also asks every connection and WebSocket to close
    // within its own grace period; whatever is still stuck after `SHUTDOWN_GRACE` is left
    // behind, so the port is free and `serve` returns in bounded time.
    let everything = async {
        tokio::join!(
            signal,
            transport::accept(listener, state.clone(), app(state.clone()))
        );
        state.tasks().close();
        state.tasks().wait().await;
    };
    tokio::select! {
        () = everything => {},
        () = async {
            token.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("connections still open after the shutdown grace period; leaving them");
        }
    }
    Ok(())
}

/// The router: the WebSocket at `/ws`, the classic API and the app at `/`, `/healthz`, and
/// `/ca.crt` when Ferry made its own certificate authority.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(classic::root))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }));
    if let Some(ca) = state.config().tls.as_ref().and_then(Tls::ca_pem) {
        let ca = ca.to_owned();
        router = router.route(
            "/ca.crt",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/x-pem-file"),
                        (
                            header::CONTENT_DISPOSITION,
                            "attachment; filename=\"ferry-ca.crt\"",
                        ),
                    ],
                    ca,
                )
                    .into_response()
            }),
        );
    }
    let router = match &state.shared.static_files {
        // The app's wasm and JavaScript are most of a first visit; gzip sends the wasm at
        // about 40 % of its size. Only the static files are compressed: the XML API and the
        // WebSocket upgrade are small or must not be touched.
        Some(files) => {
            router.fallback_service(CompressionLayer::new().gzip(true).layer(files.clone()))
        }
        None => router,
    };
    router.layer(TraceLayer::new_for_http()).with_state(state)
}

/// How often clients should send a heartbeat: four times per time-to-live, so a couple of
/// lost ones do not cost a user their place, but at least once a second.
fn heartbeat_secs(ttl: Duration) -> u64 {
    (ttl.as_secs() / 4).max(1)
}

/// Ends sessions and registrations whose time-to-live ran out, several times per
/// time-to-live so that expiry is never much later than due, until shutdown.
async fn sweep(state: AppState) {
    let period =
        (state.config().presence_ttl / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown().cancelled() => return,
            _ = ticks.tick() => state.registry().sweep(tokio::time::Instant::now()),
        }
    }
}
