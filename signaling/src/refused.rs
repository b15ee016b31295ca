//! Every HTTP-level refusal the server gives, as one typed error: a WebSocket upgrade it will
//! not make, a classic API request that comes too fast, a connection over a limit. Each
//! carries its status and the one sentence a person reads, and is logged at most once a
//! second per kind, since refusals can come by the thousand.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::connections::Crowded;
use crate::throttle::Throttle;

/// The most characters of a page's claimed origin quoted back: enough to recognize it, never
/// an echo of a long header.
const MAX_QUOTED_ORIGIN_CHARS: usize = 100;

/// Why a request or connection was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `/ws` was asked for something that is not a WebSocket opening handshake.
    #[error("this is a WebSocket endpoint: {0}")]
    NotAHandshake(#[from] HandshakeError),
    /// The page asking for a WebSocket is at an origin this server does not serve.
    #[error(
        "WebSocket connections from pages at {origin} are not allowed here; start the server \
         with --public-url or --allowed-origin naming that origin to allow them"
    )]
    Origin {
        /// The origin the page claimed, shortened.
        origin: String,
    },
    /// No room for another WebSocket: the last places are kept for everything else.
    #[error("the server is full; try again in a while")]
    NoRoomToJoin,
    /// The connection was made in a way hyper cannot hand over.
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
    /// The classic API was asked too often from one address.
    #[error("too many requests from your address; slow down")]
    TooFast,
    /// A connection over its address's or the server's limit.
    #[error("{}", match .0 {
        Crowded::Address => "too many connections from your address",
        Crowded::Server => "the server is full; try again in a while",
    })]
    Crowded(Crowded),
}

/// What is wrong with a WebSocket opening handshake (RFC 6455, section 4.2.1).
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum HandshakeError {
    /// The method is not GET.
    #[error("the handshake must be a GET")]
    NotGet,
    /// HTTP/1.0, which cannot upgrade.
    #[error("the handshake needs HTTP/1.1")]
    OldHttp,
    /// The headers that ask for the upgrade are missing.
    #[error("expected Connection: upgrade and Upgrade: websocket")]
    NoUpgrade,
    /// A WebSocket version other than 13.
    #[error("only WebSocket version 13 is supported")]
    Version,
    /// No `Sec-WebSocket-Key`.
    #[error("the Sec-WebSocket-Key header is missing")]
    NoKey,
    /// A `Sec-WebSocket-Key` that cannot be answered.
    #[error("the Sec-WebSocket-Key header is not valid")]
    BadKey,
}

impl Refused {
    /// The refusal of a page at `origin`, quoted briefly.
    pub(crate) fn origin(origin: Option<&str>) -> Self {
        Self::Origin {
            origin: origin
                .unwrap_or_default()
                .chars()
                .take(MAX_QUOTED_ORIGIN_CHARS)
                .collect(),
        }
    }

    /// The HTTP status that says it.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotAHandshake(_) => StatusCode::BAD_REQUEST,
            Self::Origin { .. } => StatusCode::FORBIDDEN,
            Self::NoRoomToJoin | Self::Crowded(Crowded::Server) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotUpgradable => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TooFast | Self::Crowded(Crowded::Address) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The header that goes with the status: when to come back, or which WebSocket version
    /// this server speaks.
    fn header(&self) -> Option<(HeaderName, &'static str)> {
        match self {
            Self::NotAHandshake(_) => Some((header::SEC_WEBSOCKET_VERSION, "13")),
            Self::TooFast => Some((header::RETRY_AFTER, "1")),
            Self::Crowded(Crowded::Server) => Some((header::RETRY_AFTER, "10")),
            _ => None,
        }
    }

    /// The whole response as bytes, for a connection refused before HTTP is spoken on it
    /// (over a limit at its accept); it is closed after.
    pub(crate) fn raw_response(&self) -> String {
        let status = self.status();
        let body = format!("{self}\n");
        let extra = self
            .header()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n{extra}\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default(),
            body.len()
        )
    }

    /// Logs the refusal, at most once a second for each kind.
    fn log(&self) {
        static UPGRADES: Throttle = Throttle::new();
        static REQUESTS: Throttle = Throttle::new();
        static CONNECTIONS: Throttle = Throttle::new();
        let status = self.status();
        match self {
            Self::TooFast => {
                if let Some(skipped) = REQUESTS.allow() {
                    tracing::info!(%status, message = %self, similar_skipped = skipped, "refused classic API requests that came too fast");
                }
            }
            Self::Crowded(crowded) => {
                if let Some(skipped) = CONNECTIONS.allow() {
                    tracing::warn!(
                        ?crowded,
                        similar_skipped = skipped,
                        "refused a connection over the limit"
                    );
                }
            }
            Self::NotUpgradable => {
                tracing::error!("a WebSocket handshake on a connection that cannot be upgraded");
            }
            _ => {
                if let Some(skipped) = UPGRADES.allow() {
                    tracing::info!(%status, message = %self, similar_skipped = skipped, "refused a WebSocket");
                }
            }
        }
    }

    /// Logs the refusal of a connection over a limit and gives the bytes to answer it with.
    pub(crate) fn logged_raw_response(&self) -> String {
        self.log();
        self.raw_response()
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status(), format!("{self}\n")).into_response();
        if let Some((name, value)) = self.header() {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_gets_a_whole_plain_response() {
        let response = Refused::Crowded(Crowded::Server).raw_response();
        assert_eq!(
            response,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
             Content-Length: 41\r\nConnection: close\r\nretry-after: 10\r\n\r\n\
             the server is full; try again in a while\n"
        );
        assert!(
            Refused::Crowded(Crowded::Address)
                .raw_response()
                .starts_with("HTTP/1.1 429 Too Many Requests\r\n")
        );
    }

    #[test]
    fn a_bad_handshake_says_what_is_wrong_and_which_version_is_spoken() {
        let response = Refused::from(HandshakeError::Version).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        assert_eq!(
            Refused::from(HandshakeError::Version).to_string(),
            "this is a WebSocket endpoint: only WebSocket version 13 is supported"
        );
    }

    #[test]
    fn an_origin_is_quoted_briefly() {
        let long = "x".repeat(1000);
        let Refused::Origin { origin } = Refused::origin(Some(&long)) else {
            panic!("an origin refusal");
        };
        assert_eq!(origin.len(), MAX_QUOTED_ORIGIN_CHARS);
    }
}
