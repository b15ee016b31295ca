//! The WebSocket at `/ws`: the upgrade checks (origin, connections per IP) and one task per
//! connection that reads, applies the protocol and, on every way out, unregisters.
//!
//! Each connection has a reader (this module's task, which owns the protocol state) and a
//! writer task that drains the connection's outbound queue. Everyone, the reader included,
//! queues without waiting; a client that lets its queue fill up is disconnected, so one slow
//! reader never holds up the others or the lock.
//!
//! How a connection ends decides what the others see:
//! - an explicit `leave`, or a clean close (a close frame from the client, which is what a
//!   browser sends when its tab closes), announces `user_left` at once;
//! - an abnormal end (an error, a TCP close without a close frame, or a connection closed by
//!   the server for bad behaviour) keeps the session for the time-to-live, so the client can
//!   reconnect with its token and nobody sees a leave/join flap; it is announced only if the
//!   session expires;
//! - a connection that stays open but silent for the time-to-live (half-open TCP) expires.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_protocol::{
    ClientMessage, ErrorCode, Nick, PROTOCOL_VERSION, PeerId, ServerMessage, SessionToken,
};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, Utf8Bytes};

use crate::rate::{RateLimiter, Verdict};
use crate::registry::{ConnId, Connection, Fresh, Kick, Outbound, Refusal, encode};
use crate::{AppState, origin};

/// How long a closing connection gets to flush its last messages and finish the close
/// handshake before it is dropped; short, because shutdown waits for it.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// The read buffer of each WebSocket. tungstenite's default of 128 KiB is zero-filled per
/// connection; signaling messages are small and a larger one is simply read in several steps.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The most bytes tungstenite gathers before writing them out. Its write buffer keeps the
/// largest size it ever reached for the connection's lifetime, so this stays small (the
/// default is 128 KiB); batching a few dozen messages per write is all the writer needs.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// Messages longer than this go out in fragments of this size. The write buffer grows to the
/// largest frame it formats and never shrinks, and a welcome lists everyone online: sent
/// whole, every connection would keep a buffer as large as the user list at its join.
const FRAGMENT_BYTES: usize = 8 * 1024;

/// Numbers connections for the logs and for telling a session's current one from an old one.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A server-side WebSocket over a connection hyper has handed over.
type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// `GET /ws`: checks the handshake, the origin and the per-IP limit, then answers 101 and
/// hands the socket to its task.
///
/// The upgrade is done here rather than with axum's `WebSocketUpgrade` because axum's
/// `Message` cannot express fragments, which [`FRAGMENT_BYTES`] needs.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut request: Request,
) -> Response {
    let accept = match accept_key(request.method(), request.headers()) {
        Ok(accept) => accept,
        Err(problem) => {
            tracing::info!(
                problem,
                "refused a request to /ws that is not a WebSocket handshake"
            );
            return (
                StatusCode::BAD_REQUEST,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                format!("this is a WebSocket endpoint: {problem}\n"),
            )
                .into_response();
        }
    };
    let headers = request.headers();
    let origin = headers
        .get(header::ORIGIN)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let config = state.config();
    if !origin::is_allowed(origin.as_deref(), host, &config.allowed_origins) {
        let origin = origin.unwrap_or_default();
        tracing::warn!(%origin, ?host, "refused a WebSocket from a page of another origin");
        return (
            StatusCode::FORBIDDEN,
            format!(
                "WebSocket connections from pages at {origin} are not allowed here; \
                 start the server with --allowed-origin {origin} to allow them\n"
            ),
        )
            .into_response();
    }
    let limits = config.limits;
    // Without the peer's address (a router driven by `oneshot`) there is nothing to count by.
    let slot = match connect_info {
        Some(Extension(ConnectInfo(addr))) => {
            match IpSlot::take(&state, addr.ip(), limits.max_connections_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(ip = %addr.ip(), "refused a WebSocket: too many connections from one address");
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "too many connections from {}; at most {} are allowed\n",
                            addr.ip(),
                            limits.max_connections_per_ip
                        ),
                    )
                        .into_response();
                }
            }
        }
        None => None,
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        tracing::error!("a WebSocket handshake on a connection that cannot be upgraded");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded\n",
        )
            .into_response();
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes))
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES);
    state.tasks().clone().spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::info!(error = %err, "WebSocket upgrade failed");
                return;
            }
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
                .await;
        run(socket, state).await;
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
fn accept_key(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
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
        return Err("the handshake must be a GET");
    }
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err("expected Connection: upgrade and Upgrade: websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err("only WebSocket version 13 is supported");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("the Sec-WebSocket-Key header is missing")?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| "the Sec-WebSocket-Key header is not valid")
}

/// One counted connection from an address; dropping it uncounts it.
#[derive(Debug)]
struct IpSlot {
    state: AppState,
    ip: IpAddr,
}

impl IpSlot {
    fn take(state: &AppState, ip: IpAddr, max: usize) -> Option<Self> {
        state.registry().open_connection(ip, max).then(|| Self {
            state: state.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.state.registry().close_connection(self.ip);
    }
}

/// Why a connection's read loop stopped.
#[derive(Debug)]
enum Ending {
    /// The client sent a close frame.
    ClientClosed,
    /// The socket failed or ended without a close frame.
    Dropped,
    /// The server is shutting down.
    Shutdown,
    /// The registry ended the connection.
    Kicked(Kick),
    /// The client broke a rule that ends the connection: tell it why, then close with `code`.
    Fatal {
        refusal: Refusal,
        code: CloseCode,
        reason: &'static str,
    },
    /// The server could not go on with this connection.
    Internal,
}

/// The reader's protocol state for one connection.
struct Reader {
    state: AppState,
    conn: ConnId,
    tx: mpsc::Sender<Outbound>,
    /// The session this connection holds, once joined.
    joined: Option<PeerId>,
    /// Fires when the registry ends the connection; present while joined.
    kick: Option<oneshot::Receiver<Kick>>,
    /// When to send fresh TURN credentials; present while joined to a server that makes them.
    renew: Option<Pin<Box<Sleep>>>,
    limiter: RateLimiter,
}

/// Runs one connection to its end.
async fn run(socket: Socket, state: AppState) {
    let limits = state.config().limits;
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(limits.outbound_queue.max(1));
    let writer = tokio::spawn(write(sink, rx));
    let mut reader = Reader {
        conn,
        tx,
        joined: None,
        kick: None,
        renew: None,
        limiter: RateLimiter::new(
            limits.messages_per_sec,
            limits.message_burst,
            limits.max_dropped_messages,
            Instant::now(),
        ),
        state,
    };
    tracing::debug!(conn, "connected");
    let ending = reader.read(&mut stream).await;
    reader.finish(ending, stream, writer).await;
}

/// Sends what is queued until the queue closes, a close frame has gone out or the socket fails.
///
/// Messages are fed into tungstenite's write buffer and flushed once the queue is empty, so a
/// burst (a hundred people joining) costs a few system calls instead of one per message.
async fn write(mut sink: SplitSink<Socket, Message>, mut rx: mpsc::Receiver<Outbound>) {
    while let Some(outbound) = rx.recv().await {
        let written = match outbound {
            Outbound::Text(text) => match feed_text(&mut sink, text).await {
                Ok(()) if rx.is_empty() => sink.flush().await,
                fed => fed,
            },
            Outbound::Close(frame) => {
                if let Err(err) = sink.send(Message::Close(Some(frame))).await {
                    tracing::debug!(error = %err, "could not send a close frame");
                }
                return;
            }
        };
        if let Err(err) = written {
            tracing::debug!(error = %err, "could not write to a WebSocket");
            return;
        }
    }
}

/// Feeds one text message to the sink, in fragments of [`FRAGMENT_BYTES`] when it is longer.
async fn feed_text(
    sink: &mut SplitSink<Socket, Message>,
    text: Utf8Bytes,
) -> Result<(), tungstenite::Error> {
    if text.len() <= FRAGMENT_BYTES {
        return sink.feed(Message::Text(text)).await;
    }
    // Fragments may split a character; only the whole message has to be valid UTF-8.
    let bytes = Bytes::from(text);
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + FRAGMENT_BYTES).min(bytes.len());
        let opcode = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let frame = Frame::message(
            bytes.slice(start..end),
            OpCode::Data(opcode),
            end == bytes.len(),
        );
        sink.feed(Message::Frame(frame)).await?;
        start = end;
    }
    Ok(())
}

impl Reader {
    /// Reads and handles messages until something ends the connection.
    async fn read(&mut self, stream: &mut SplitStream<Socket>) -> Ending {
        loop {
            tokio::select! {
                biased;
                () = self.state.shutdown().cancelled() => return Ending::Shutdown,
                kick = kicked(&mut self.kick) => match kick {
                    Some(kick) => return Ending::Kicked(kick),
                    // The registry let go of this connection without a word (it left).
                    None => self.kick = None,
                },
                () = due(&mut self.renew) => {
                    if let Some(ending) = self.renew_ice_servers() {
                        return ending;
                    }
                }
                frame = stream.next() => {
                    let ending = match frame {
                        Some(Ok(message)) => self.on_message(message),
                        Some(Err(err)) => Some(self.on_read_error(err)),
                        None => {
                            tracing::info!(conn = self.conn, "connection ended without a close frame");
                            Some(Ending::Dropped)
                        }
                    };
                    if let Some(ending) = ending {
                        return ending;
                    }
                }
            }
        }
    }

    /// Handles one frame; `Some` ends the connection.
    fn on_message(&mut self, message: Message) -> Option<Ending> {
        if let Message::Close(frame) = &message {
            tracing::debug!(conn = self.conn, ?frame, "client closed");
            return Some(Ending::ClientClosed);
        }
        let now = Instant::now();
        match self.limiter.check(now) {
            Verdict::Allow => {}
            Verdict::Drop => {
                return self.refuse(Refusal {
                    code: ErrorCode::RateLimited,
                    message: "too many messages; this one was dropped".into(),
                });
            }
            Verdict::Disconnect => {
                tracing::warn!(conn = self.conn, "closing a connection that keeps flooding");
                return Some(Ending::Fatal {
                    refusal: Refusal {
                        code: ErrorCode::RateLimited,
                        message: "too many messages for too long; closing the connection".into(),
                    },
                    code: CloseCode::Policy,
                    reason: "message flood",
                });
            }
        }
        if let Some(id) = &self.joined {
            self.state.registry().touch(id, self.conn, now);
        }
        match message {
            Message::Text(text) => self.on_text(text.as_str()),
            Message::Binary(_) => self.refuse(Refusal {
                code: ErrorCode::BinaryNotSupported,
                message: "this protocol uses JSON text frames only".into(),
            }),
            // tungstenite answers pings itself; either kind is just a sign of life.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => None,
        }
    }

    fn on_text(&mut self, text: &str) -> Option<Ending> {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(err) => {
                return self.refuse(Refusal {
                    code: ErrorCode::MalformedMessage,
                    message: format!("not a message of this protocol: {err}"),
                });
            }
        };
        let Some(id) = self.joined.clone() else {
            return match message {
                ClientMessage::Join {
                    version,
                    nick,
                    token,
                } => self.join(version, &nick, token),
                _ => self.refuse(Refusal {
                    code: ErrorCode::NotJoined,
                    message: "send a join message first".into(),
                }),
            };
        };
        match message {
            ClientMessage::Join { .. } => self.refuse(Refusal {
                code: ErrorCode::AlreadyJoined,
                message: "this connection has already joined".into(),
            }),
            ClientMessage::Heartbeat => None,
            ClientMessage::Signal { to, payload } => {
                let relayed = self.state.registry().relay(&id, &to, payload);
                match relayed {
                    Ok(()) => None,
                    Err(refusal) => self.refuse(refusal),
                }
            }
            ClientMessage::Leave => {
                self.state.registry().leave(&id, self.conn);
                // The connection stays open and may join again, say under another nick.
                self.joined = None;
                self.kick = None;
                self.renew = None;
                None
            }
        }
    }

    fn join(&mut self, version: u32, nick: &str, token: Option<SessionToken>) -> Option<Ending> {
        if version != PROTOCOL_VERSION {
            return Some(Ending::Fatal {
                refusal: Refusal {
                    code: ErrorCode::UnsupportedVersion,
                    message: format!(
                        "this server speaks protocol version {PROTOCOL_VERSION}, not {version}; reload the page"
                    ),
                },
                code: CloseCode::Policy,
                reason: "unsupported protocol version",
            });
        }
        let nick = match Nick::new(nick) {
            Ok(nick) => nick,
            Err(err) => {
                return self.refuse(Refusal {
                    code: ErrorCode::InvalidNick,
                    message: err.to_string(),
                });
            }
        };
        let fresh = match fresh_ids() {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::error!(error = %err, "no random numbers for a new session");
                return Some(Ending::Internal);
            }
        };
        let (kick_tx, kick_rx) = oneshot::channel();
        let conn = Connection::new(self.conn, self.tx.clone(), kick_tx);
        let joined = self
            .state
            .registry()
            .join(nick, token.as_ref(), fresh, conn, Instant::now());
        match joined {
            Ok(id) => {
                self.joined = Some(id);
                self.kick = Some(kick_rx);
                self.renew = renewal(&self.state);
                None
            }
            Err(refusal) => self.refuse(refusal),
        }
    }

    fn on_read_error(&self, err: tungstenite::Error) -> Ending {
        if let tungstenite::Error::Capacity(capacity) = &err {
            tracing::warn!(conn = self.conn, error = %capacity, "closing a connection that sent a message too large");
            return Ending::Fatal {
                refusal: Refusal {
                    code: ErrorCode::MessageTooLarge,
                    message: format!(
                        "messages can have at most {} bytes",
                        self.state.config().limits.max_message_bytes
                    ),
                },
                code: CloseCode::Size,
                reason: "message too large",
            };
        }
        tracing::info!(conn = self.conn, error = %err, "connection failed");
        Ending::Dropped
    }

    /// Sends the client fresh TURN credentials before its current ones expire, and plans the
    /// next renewal.
    fn renew_ice_servers(&mut self) -> Option<Ending> {
        self.renew = renewal(&self.state);
        let id = self.joined.as_ref()?;
        let ice_servers = self.state.config().ice.servers_for(id, SystemTime::now());
        let text = encode(&ServerMessage::IceServers { ice_servers })?;
        tracing::debug!(conn = self.conn, "renewed TURN credentials");
        self.queue(text)
    }

    /// Tells the client its message was refused; the connection goes on unless the client
    /// does not even read its replies.
    fn refuse(&self, refusal: Refusal) -> Option<Ending> {
        tracing::info!(conn = self.conn, code = ?refusal.code, message = %refusal.message, "refused a message");
        let reply = ServerMessage::Error {
            code: refusal.code,
            message: refusal.message,
        };
        let text = encode(&reply)?;
        self.queue(text)
    }

    /// Queues a message for the client without waiting; one that does not read its messages
    /// is disconnected.
    fn queue(&self, text: Utf8Bytes) -> Option<Ending> {
        match self.tx.try_send(Outbound::Text(text)) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.conn,
                    "outbound queue full; disconnecting a client that does not read"
                );
                Some(Ending::Kicked(Kick::TooSlow))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Some(Ending::Dropped),
        }
    }

    /// Unregisters as `ending` demands, says goodbye and closes, within [`CLOSE_GRACE`].
    async fn finish(
        self,
        ending: Ending,
        mut stream: SplitStream<Socket>,
        mut writer: JoinHandle<()>,
    ) {
        tracing::debug!(conn = self.conn, ?ending, "closing");
        if let Some(id) = &self.joined {
            let mut registry = self.state.registry();
            match &ending {
                Ending::ClientClosed => registry.leave(id, self.conn),
                Ending::Dropped
                | Ending::Fatal { .. }
                | Ending::Internal
                | Ending::Kicked(Kick::TooSlow) => registry.linger(id, self.conn, Instant::now()),
                // On shutdown nobody is left to tell; a taken-over or expired session has
                // already been handed on or announced.
                Ending::Shutdown | Ending::Kicked(Kick::TakenOver | Kick::Expired) => {}
            }
        }
        let deadline = Instant::now() + CLOSE_GRACE;
        // After a client's close frame, reading once more sends tungstenite's reply.
        let mut handshake = matches!(ending, Ending::ClientClosed);
        if let Some((refusal, code, reason)) = self.farewell(ending) {
            if let Some(Refusal { code, message }) = refusal
                && let Some(text) = encode(&ServerMessage::Error { code, message })
            {
                // A full queue means the client does not read; it gets the close alone.
                let _ = self.tx.try_send(Outbound::Text(text));
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            handshake = self.tx.try_send(Outbound::Close(frame)).is_ok();
        }
        drop(self.tx);
        if tokio::time::timeout_at(deadline, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
        if handshake {
            // Reading on completes the close handshake, so the TCP connection ends cleanly
            // instead of being reset with unread data.
            let _ = tokio::time::timeout_at(deadline, async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
    }

    /// The error message, close code and close reason a connection ending this way gets.
    fn farewell(&self, ending: Ending) -> Option<(Option<Refusal>, CloseCode, &'static str)> {
        let ended = |message: String| {
            Some(Refusal {
                code: ErrorCode::SessionEnded,
                message,
            })
        };
        match ending {
            Ending::ClientClosed | Ending::Dropped => None,
            Ending::Shutdown => Some((
                ended("the server is shutting down".into()),
                CloseCode::Away,
                "server shutting down",
            )),
            Ending::Kicked(Kick::TakenOver) => Some((
                ended("a newer connection reclaimed this session".into()),
                CloseCode::Normal,
                "session taken over",
            )),
            Ending::Kicked(Kick::Expired) => {
                let ttl = self.state.config().presence_ttl;
                Some((
                    ended(format!("no sign of life for {ttl:?}")),
                    CloseCode::Normal,
                    "no sign of life",
                ))
            }
            Ending::Kicked(Kick::TooSlow) => {
                Some((None, CloseCode::Policy, "not reading its messages"))
            }
            Ending::Fatal {
                refusal,
                code,
                reason,
            } => Some((Some(refusal), code, reason)),
            Ending::Internal => Some((None, CloseCode::Error, "internal error")),
        }
    }
}

/// Waits for the registry to end the connection: `Some` with why, or `None` once the registry
/// has dropped its handle without a word; never while there is no handle.
async fn kicked(kick: &mut Option<oneshot::Receiver<Kick>>) -> Option<Kick> {
    match kick {
        Some(receiver) => receiver.await.ok(),
        None => std::future::pending().await,
    }
}

/// Waits for `timer`, never while there is none.
async fn due(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The timer for the next credential renewal, when the server's TURN credentials expire.
fn renewal(state: &AppState) -> Option<Pin<Box<Sleep>>> {
    let after = state.config().ice.renew_after()?;
    Some(Box::pin(tokio::time::sleep(after)))
}

/// A new peer id and session token from the operating system's secure random source.
fn fresh_ids() -> Result<Fresh, getrandom::Error> {
    let mut id = [0; PeerId::BYTES];
    let mut token = [0; SessionToken::BYTES];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut token)?;
    Ok(Fresh {
        id: PeerId::from_random_bytes(id),
        token: SessionToken::from_random_bytes(token),
    })
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

    #[test]
    fn accepts_the_rfc_example_handshake() {
        let headers = handshake(&[
            (header::CONNECTION, "keep-alive, Upgrade"),
            (header::UPGRADE, "websocket"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(
            accept_key(&Method::GET, &headers),
            Ok(HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        );
    }

    #[test]
    fn refuses_what_is_not_a_handshake() {
        let complete = [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, "websocket"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert!(accept_key(&Method::POST, &handshake(&complete)).is_err());
        for missing in 0..complete.len() {
            let mut partial = complete.to_vec();
            partial.remove(missing);
            assert!(
                accept_key(&Method::GET, &handshake(&partial)).is_err(),
                "{missing}"
            );
        }
        let mut old = complete.to_vec();
        old[2].1 = "8";
        assert_eq!(
            accept_key(&Method::GET, &handshake(&old)),
            Err("only WebSocket version 13 is supported")
        );
    }
}
