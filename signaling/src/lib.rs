//! Ferry's signaling server: browsers join with a nickname, see who else is online and relay
//! WebRTC offers, answers and ICE candidates to each other; file bytes never pass through here.
//!
//! The same server answers the classic HTTP user API (`/?username=…`, `/?friends=…`,
//! `/?listUsers=true`) in the XML shape of Adobe's reg.cgi, and can serve the built app.
//! [`bind`] and [`serve`] are separate so tests can bind `127.0.0.1:0`; [`app`] builds the
//! router alone for `oneshot` tests.

#![forbid(unsafe_code)]

mod address;
mod assets;
pub mod banner;
pub mod certs;
mod changes;
mod classic;
mod cluster;
mod config;
pub mod connections;
pub mod ice;
mod inbound;
mod lookalike;
pub mod names;
mod origin;
mod outbound;
mod pairing;
mod presence;
mod rate;
mod refused;
mod registry;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod transport;
mod ws;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ferry_protocol::{PRESENCE_BATCH_MILLIS, ServerInfo};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

use crate::assets::Assets;
use crate::cluster::Cluster;
pub use crate::cluster::INSTANCE_TTL;
pub use crate::config::{CandidateFilter, Config, Limits};
use crate::connections::Connections;
pub use crate::ice::{IceConfig, TurnRest, TurnSecret};
pub use crate::inbound::SignalLimits;
use crate::names::Machine;
use crate::origin::Origins;
pub use crate::pairing::PairLimits;
use crate::rate::RateLimiter;
pub use crate::registry::HttpLimits;
use crate::registry::Registry;
pub use crate::transport::Tls;

/// How long `serve` waits, after shutdown was asked for, for connections to close before it
/// returns anyway. Each WebSocket gets a shorter grace of its own for its close handshake, so this
/// only matters for a connection that is stuck.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The server's shared state: the registry behind one lock, the configuration, and what
/// shutdown needs.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    registry: Mutex<Registry>,
    connections: Arc<Connections>,
    origins: Origins,
    /// The classic API's request rate, per address.
    http_rates: Mutex<HashMap<IpAddr, RateLimiter>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    static_files: Option<Assets>,
    /// The instance's part in the service; `None` for a router without a server.
    cluster: Option<Arc<Cluster>>,
}

impl AppState {
    /// State for a server with `config`, nobody online yet, and no listen address: only the
    /// configured origins may open WebSockets (for tests through the router alone).
    pub fn new(config: Config) -> Self {
        Self::listening(config, None, None)
    }

    /// State for a server with `config` listening on `addr`, whose own origins may open
    /// WebSockets.
    fn listening(config: Config, addr: Option<SocketAddr>, cluster: Option<Arc<Cluster>>) -> Self {
        let mut registry = Registry::new(
            config.presence_ttl,
            config.ice.clone(),
            heartbeat_secs(config.presence_ttl),
            config.lobby,
            &config.limits,
        );
        let static_files = config.static_dir.as_ref().map(|dir| Assets::new(dir));
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let names = addr.map_or_else(Vec::new, |addr| {
            Machine::local().certificate_names(addr.ip())
        });
        let origins = Origins::new(
            scheme,
            addr,
            &names,
            &config.public_urls,
            &config.allowed_origins,
        );
        let limits = config.limits;
        if let Some(cluster) = &cluster {
            registry.connect(cluster.outbox());
        }
        Self {
            shared: Arc::new(Shared {
                config,
                registry: Mutex::new(registry),
                connections: Connections::new(
                    limits.max_connections_per_ip,
                    limits.max_connections,
                ),
                origins,
                http_rates: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                static_files,
                cluster,
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

    fn connections(&self) -> &Arc<Connections> {
        &self.shared.connections
    }

    fn origins(&self) -> &Origins {
        &self.shared.origins
    }

    /// Takes a token for a classic API request from `ip`; false when it comes too fast.
    fn http_request_allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let limits = self.config().limits;
        let mut rates = self
            .shared
            .http_rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let rate = rates.entry(ip).or_insert_with(|| {
            RateLimiter::new(
                limits.http_requests_per_sec,
                limits.http_request_burst,
                u32::MAX,
                now,
            )
        });
        rate.check(now) == rate::Verdict::Allow
    }

    /// Forgets the request rates of addresses whose allowance has refilled: they are as good
    /// as new, and the map must not grow with every address ever seen.
    fn forget_idle_http_rates(&self, now: Instant) {
        self.shared
            .http_rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, rate| !rate.is_full(now));
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    fn tasks(&self) -> &TaskTracker {
        &self.shared.tasks
    }

    fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.shared.cluster.as_ref()
    }

    /// Waits for the next of `ticks` ([`every`]); false once the server is shutting down.
    async fn next_tick(&self, ticks: &mut tokio::time::Interval) -> bool {
        tokio::select! {
            () = self.shutdown().cancelled() => false,
            _ = ticks.tick() => true,
        }
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// How many connections may wait to be accepted: a crowd arriving at once must not have its
/// connection attempts dropped (and retried seconds later) while the server catches up. The
/// kernel caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds the listening socket; `127.0.0.1:0` picks a free port. `SO_REUSEADDR` lets a
/// restarted server bind the same port again at once.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves on `listener` until `shutdown` resolves, then closes every WebSocket with 1001
/// (going away) and returns promptly, freeing the port.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Only instances that share Redis form a cluster; one alone holds everything itself.
    let cluster = match config.redis.as_deref() {
        Some(url) => Some(Cluster::new(url, config.instance_ttl).map_err(std::io::Error::other)?),
        None => None,
    };
    let state = AppState::listening(
        config,
        Some(listener.local_addr()?),
        cluster.as_ref().map(|(cluster, _)| Arc::clone(cluster)),
    );
    if let Some((cluster, work)) = cluster {
        cluster::start(&state, &cluster, work);
    }
    state.tasks().spawn(sweep(state.clone()));
    state.tasks().spawn(announce(state.clone()));
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

/// The router: the WebSocket at `/ws`, the classic API and the app at `/`, `/healthz`, the
/// share target `/share` for when the service worker is not there, and
/// `/ca.crt` when Ferry made its own certificate authority.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(classic::root))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(health))
        .route("/api/server", get(server_info))
        .route("/share", post(share_without_worker));
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
    router
        .fallback(assets)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Any other path: a file of the app, or 404 without one.
async fn assets(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    match &state.shared.static_files {
        Some(files) => files.serve(request).await,
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// `POST /share`, the manifest's share target, reached only when the page's service worker
/// did not take the share (it was not running yet): the shared files are not read, and the page
/// opens saying so, so that they can be chosen there instead.
async fn share_without_worker() -> axum::response::Redirect {
    axum::response::Redirect::to("/?shared")
}

/// `GET /healthz`: `ok`, or 503 and why when the instance is degraded: its shared store does
/// not answer, so it takes no joins (those already joined go on as far as they can).
async fn health(State(state): State<AppState>) -> axum::response::Response {
    match state.cluster() {
        Some(cluster) if !cluster.is_healthy() => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "degraded: the shared store does not answer",
        )
            .into_response(),
        _ => "ok".into_response(),
    }
}

/// `GET /api/server`: what a page needs to know before joining, such as whether there is a
/// lobby at all.
async fn server_info(State(state): State<AppState>) -> axum::Json<ServerInfo> {
    axum::Json(ServerInfo {
        lobby: state.config().lobby,
        room_size: state.config().limits.room_size,
    })
}

/// How often clients should send a heartbeat: four times per time-to-live, so a couple of
/// lost ones do not cost a user their place, but at least once a second.
fn heartbeat_secs(ttl: Duration) -> u64 {
    (ttl.as_secs() / 4).max(1)
}

/// Ends sessions and registrations whose time-to-live ran out, and unlists lingering sessions
/// past their grace, several times per time-to-live and per grace so that neither is ever much
/// later than due, until shutdown.
async fn sweep(state: AppState) {
    let config = state.config();
    let period = (config.presence_ttl / 8)
        .min(config.limits.linger_grace / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticks = every(period);
    while state.next_tick(&mut ticks).await {
        let now = Instant::now();
        state.registry().sweep(now);
        state.forget_idle_http_rates(now);
    }
}

/// Announces who came and went, every [`PRESENCE_BATCH_MILLIS`] when anything did.
async fn announce(state: AppState) {
    let mut ticks = every(Duration::from_millis(PRESENCE_BATCH_MILLIS));
    while state.next_tick(&mut ticks).await {
        state.registry().announce();
    }
}

/// Ticks every `period` for the server's periodic work ([`AppState::next_tick`]); a tick
/// missed while the server was busy comes late rather than in a burst.
fn every(period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}
