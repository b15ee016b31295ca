//! The connections under the router: accepts TCP, speaks TLS when the server has a
//! certificate, serves HTTP/1.1 with upgrades (the WebSocket) and closes everything on shutdown.
//!
//! The accept loop is Ferry's own, over hyper and tokio-rustls, rather than `axum::serve`, so
//! that every connection is counted from its accept ([`Connections`]) and has deadlines from
//! its first byte: a TLS handshake or request headers that never finish, or a keep-alive
//! connection left idle, cannot hold a connection open. A connection over its address's or
//! the server's limit gets a one-line 429 or 503 and is closed at once.
//!
//! A person who types the address without `https://` reaches the TLS port in the clear; such a
//! connection is told where to go (a redirect to the same path over HTTPS) instead of failing a
//! TLS handshake with an unreadable error page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::AppState;
use crate::certs::{CertError, Identity};
use crate::connections::{Crowded, Slot};
use crate::refused::Refused;

/// How long a refusal may take to write before the connection is simply dropped.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The server's TLS setup: what the handshake presents, and the authority's certificate to
/// serve at `/ca.crt` when Ferry made it.
#[derive(Clone, Debug)]
pub struct Tls {
    config: Arc<ServerConfig>,
    ca_pem: Option<String>,
}

impl Tls {
    /// TLS with `identity`'s certificate chain and key, HTTP/1.1 only (the WebSocket upgrade
    /// is an HTTP/1.1 mechanism).
    pub fn new(identity: Identity) -> Result<Self, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            ca_pem: identity.ca_pem,
        })
    }

    /// The certificate authority Ferry made, in PEM, if it made one.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
}

/// Accepts connections on `listener` until shutdown, each served on a task of its own.
pub(crate) async fn accept(listener: TcpListener, state: AppState, router: Router) {
    let acceptor = state
        .config()
        .tls
        .as_ref()
        .map(|tls| TlsAcceptor::from(Arc::clone(&tls.config)));
    loop {
        let accepted = tokio::select! {
            () = state.shutdown().cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Running out of file descriptors is the usual cause; accepting again at once
                // would spin, so give the system a moment.
                tracing::warn!(error = %err, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match state.connections().admit(peer.ip()) {
            Ok(slot) => Arc::new(slot),
            Err(crowded) => {
                refuse(stream, crowded, &state);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (state, router, acceptor) = (state.clone(), router.clone(), acceptor.clone());
        state.tasks().clone().spawn(async move {
            let connection = Accepted { peer, slot };
            match acceptor {
                Some(acceptor) => serve_tls(stream, connection, acceptor, &state, router).await,
                None => serve_http(TokioIo::new(stream), connection, &state, router).await,
            }
        });
    }
}

/// A counted connection: who it is from, and its place among the open connections, which a
/// WebSocket it turns into takes over.
#[derive(Clone, Debug)]
pub(crate) struct Accepted {
    peer: SocketAddr,
    slot: Arc<Slot>,
}

impl Accepted {
    /// Who the connection is from.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The place this connection holds among the open connections.
    pub(crate) fn slot(&self) -> Arc<Slot> {
        Arc::clone(&self.slot)
    }
}

/// Tells a connection over a limit why, in one short response, and closes it; on a task, so
/// a client that does not read cannot hold up the accept loop.
fn refuse(mut stream: TcpStream, crowded: Crowded, state: &AppState) {
    let response = Refused::Crowded(crowded).logged_raw_response();
    state.tasks().spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, stream.write_all(response.as_bytes())).await;
    });
}

/// Serves one connection to the TLS port: TLS, or a redirect when it speaks plain HTTP.
async fn serve_tls(
    stream: TcpStream,
    connection: Accepted,
    acceptor: TlsAcceptor,
    state: &AppState,
    router: Router,
) {
    let timeout = state.config().limits.header_timeout;
    let peer = connection.peer;
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(timeout, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {}
        Ok(Ok(1)) => {
            let redirect = Router::new().fallback(redirect_to_https);
            return serve_http(TokioIo::new(stream), connection, state, redirect).await;
        }
        // Closed, failed or silent before its first byte.
        _ => return,
    }
    let handshake = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
    match handshake {
        Ok(Ok(tls)) => serve_http(TokioIo::new(tls), connection, state, router).await,
        Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serves HTTP/1.1 on one connection until it closes, and asks it to close on shutdown.
///
/// hyper's header timeout runs whenever the connection waits for a request: for the first
/// one, and between keep-alive requests, so it bounds an idle connection too.
async fn serve_http<I>(io: TokioIo<I>, connection: Accepted, state: &AppState, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer;
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        // The logs name who asked; a WebSocket takes over the connection's place.
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(connection.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await;
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config().limits.header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = state.shutdown().cancelled() => {
            // Finishes a request in progress, then closes; an idle connection closes at once.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

/// Sends a request that reached the TLS port in the clear to the same place over HTTPS.
async fn redirect_to_https(request: Request<Body>) -> Response<Body> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| !host.is_empty() && !host.contains(['/', '\\', '@']));
    let Some(host) = host else {
        let mut response = Response::new(Body::from("this server speaks HTTPS only\n"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = format!("https://{host}{path}");
    let mut response = Response::new(Body::from(format!(
        "this server speaks HTTPS: {location}\n"
    )));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
