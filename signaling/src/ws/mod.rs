//! The WebSocket at `/ws`: the upgrade and its checks (the handshake, HTTP/1.1, the page's
//! origin, room for another WebSocket), then one task per connection ([`session`]) with a
//! writer beside it ([`writer`]).
//!
//! The upgrade is done here rather than with axum's `WebSocketUpgrade` because axum's
//! `Message` cannot express fragments, which the writer needs to keep buffers small.

mod session;
mod writer;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::AppState;
use crate::refused::{HandshakeError, Refused};
use crate::transport::Accepted;

/// The read buffer of each WebSocket. tungstenite's default of 128 KiB is zero-filled per
/// connection; signaling messages are small and a larger one is simply read in several steps.
/// Halving it from 4 KiB took an idle joined connection from 17.1 to 15.4 KiB of the
/// server's memory, at the same join speed (ferry-load, 6,000 users).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// `GET /ws`: checks the handshake, the origin and that there is room, then answers 101 and
/// hands the socket to its task.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    accepted: Option<Extension<Accepted>>,
    mut request: Request,
) -> Response {
    let accept = match accept_key(request.method(), request.version(), request.headers()) {
        Ok(accept) => accept,
        Err(problem) => return Refused::from(problem).into_response(),
    };
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    if !state.origins().allow(origin.as_deref()) {
        // The origin is the page's own claim: it is quoted briefly, not echoed at length.
        return Refused::origin(origin.as_deref()).into_response();
    }
    if !state.connections().room_for_join() {
        return Refused::NoRoomToJoin.into_response();
    }
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Refused::NotUpgradable.into_response();
    };
    // The connection keeps its place among the open ones for as long as the WebSocket lives;
    // without one (a router driven by `oneshot`) there is nothing to keep.
    let from = crate::address::client(
        accepted
            .as_ref()
            .map(|Extension(accepted)| accepted.peer().ip()),
        request.headers(),
        state.config().trust_proxy,
    );
    let slot = accepted.map(|Extension(accepted)| accepted.slot());
    let limits = state.config().limits;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes))
        .read_buffer_size(READ_BUFFER_BYTES)
        // tungstenite writes only its own pongs and close replies (the writer writes the
        // rest): at once, through the queue, with no buffer of its own to keep.
        .write_buffer_size(0);
    state.tasks().clone().spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::info!(error = %err, "WebSocket upgrade failed");
                return;
            }
        };
        session::run(TokioIo::new(upgraded), ws_config, state, from).await;
        drop(slot);
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Checks a WebSocket opening handshake (RFC 6455, section 4.2.1) and computes its
/// `Sec-WebSocket-Accept`; the error says what is missing.
fn accept_key(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<HeaderValue, HandshakeError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if method != Method::GET {
        return Err(HandshakeError::NotGet);
    }
    // Upgrades exist from HTTP/1.1 on; an HTTP/1.0 connection cannot be handed over.
    if version < Version::HTTP_11 {
        return Err(HandshakeError::OldHttp);
    }
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(HandshakeError::NoUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err(HandshakeError::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::NoKey)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| HandshakeError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    const COMPLETE: [(header::HeaderName, &str); 4] = [
        (header::CONNECTION, "upgrade"),
        (header::UPGRADE, "websocket"),
        (header::SEC_WEBSOCKET_VERSION, "13"),
        (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn accepts_the_rfc_example_handshake() {
        let headers = handshake(&[
            (header::CONNECTION, "keep-alive, Upgrade"),
            (header::UPGRADE, "websocket"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(
            accept_key(&Method::GET, Version::HTTP_11, &headers),
            Ok(HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        );
    }

    #[test]
    fn refuses_what_is_not_a_handshake() {
        let get = |headers: &HeaderMap| accept_key(&Method::GET, Version::HTTP_11, headers);
        assert!(accept_key(&Method::POST, Version::HTTP_11, &handshake(&COMPLETE)).is_err());
        for missing in 0..COMPLETE.len() {
            let mut partial = COMPLETE.to_vec();
            partial.remove(missing);
            assert!(get(&handshake(&partial)).is_err(), "{missing}");
        }
        let mut old = COMPLETE.to_vec();
        old[2].1 = "8";
        assert_eq!(get(&handshake(&old)), Err(HandshakeError::Version));
    }

    #[test]
    fn http_1_0_cannot_upgrade() {
        assert_eq!(
            accept_key(&Method::GET, Version::HTTP_10, &handshake(&COMPLETE)),
            Err(HandshakeError::OldHttp)
        );
    }
}
