//! One WebSocket's session: a task that reads, applies the protocol and, on every way out,
//! unregisters.
//!
//! Each connection has this reader (which owns the protocol state) and a writer that drains
//! the connection's outbound queue ([`super::writer`]). Everyone, the reader included, queues
//! without waiting; a client over its byte budget is disconnected, so one slow reader never
//! holds up the others or the lock.
//!
//! A connection must `join` within the join timeout, and a joined one must show a sign of
//! life (any message, ping or pong) within the silence timeout; either one left silent is
//! closed, so a connection that says nothing cannot live for ever. Both deadlines measure the
//! client, not the server: the join timeout counts from this task's first read, and the
//! socket is always read before a deadline is looked at, so a message that waited in the
//! socket while the server was too busy to read it (a crowd joining at once) counts as sent
//! when it arrived, however late the server got to it.
//!
//! How a connection ends decides what the others see:
//! - an explicit `leave`, or a clean close (a close frame from the client, which is what a
//!   browser sends when its tab closes), is announced as a departure at once;
//! - an abnormal end (an error, a TCP close without a close frame, a silent connection, or a
//!   connection closed by the server for bad behaviour) keeps the session for the
//!   time-to-live, so the client can reconnect with its token and nobody sees a leave/join
//!   flap; it is announced only if the session expires.

mod ending;
mod joining;

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ferry_protocol::{
    ClientMessage, ErrorCode, PeerId, ServerMessage, SessionToken, SignalPayload, Wire,
};
use futures::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::ReadHalf;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use self::ending::Ending;
use super::writer::{self, Duplex};
use crate::AppState;
use crate::outbound::{self, Outbound, Refused};
use crate::rate::{RateLimiter, Verdict};
use crate::registry::{ConnId, Fresh, Kick, Refusal, encode};

/// The most characters of a client's own input quoted back in an error: enough to see what
/// was wrong, never an echo of a large message.
const MAX_QUOTED_CHARS: usize = 160;

/// How many signals a connection may have refused for a busy addressee at once, and then
/// per second, before it is closed as a flooder: a peer that signals as Ferry does never
/// meets the addressee's bounds at all.
const BUSY_REFUSALS_BURST: u32 = 20;
const BUSY_REFUSALS_PER_SEC: u32 = 1;

/// Numbers connections for the logs and for telling a session's current one from an old one.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The server side of a WebSocket, as tungstenite reads it: the reading half of a connection
/// hyper has handed over, its writes going to the writer's queue.
pub(super) type Socket = WebSocketStream<Duplex<ReadHalf<TokioIo<Upgraded>>>>;

/// The reader's protocol state for one connection.
struct Reader {
    state: AppState,
    conn: ConnId,
    tx: outbound::Sender,
    /// Where the connection comes from, when it has an address.
    from: Option<IpAddr>,
    /// The session this connection holds, once joined.
    joined: Option<PeerId>,
    /// Fires when the registry ends the connection; present while joined.
    kick: Option<oneshot::Receiver<Kick>>,
    /// When to send fresh TURN credentials; present while joined to a server that makes them.
    renew: Option<Pin<Box<Sleep>>>,
    /// When a silent connection is closed: the join timeout before joining, the silence
    /// timeout after; moved on by every frame that arrives.
    silence: Pin<Box<Sleep>>,
    limiter: RateLimiter,
    /// Signals refused because their addressee could take no more: a few are a slow
    /// reader's doing, many in a row a flood, which closes this connection.
    busy: RateLimiter,
}

/// Runs one connection, from `from`, to its end: tungstenite reads it with `config`, the
/// writer ([`writer`]) writes it.
pub(super) async fn run(
    io: TokioIo<Upgraded>,
    config: WebSocketConfig,
    state: AppState,
    from: Option<IpAddr>,
) {
    let limits = state.config().limits;
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (read, write) = tokio::io::split(io);
    let (tx, rx) = outbound::queue(limits.outbound_bytes);
    let writer = tokio::spawn(writer::write(write, rx));
    let mut stream =
        WebSocketStream::from_raw_socket(Duplex::new(read, tx.clone()), Role::Server, Some(config))
            .await;
    // The reader reads as soon as it is made, in this same poll: the join deadline counts
    // from the server's first read, not from the upgrade.
    let now = Instant::now();
    let mut reader = Reader {
        conn,
        from,
        tx,
        joined: None,
        kick: None,
        renew: None,
        silence: Box::pin(tokio::time::sleep_until(now + limits.join_timeout)),
        limiter: RateLimiter::new(
            limits.messages_per_sec,
            limits.message_burst,
            limits.max_dropped_messages,
            now,
        ),
        busy: RateLimiter::new(BUSY_REFUSALS_PER_SEC, BUSY_REFUSALS_BURST, 0, now),
        state,
    };
    tracing::trace!(conn, "connected");
    let ending = reader.read(&mut stream).await;
    reader.finish(ending, stream, writer).await;
}

impl Reader {
    /// Reads and handles messages until something ends the connection.
    async fn read(&mut self, stream: &mut Socket) -> Ending {
        loop {
            // The socket is read before the deadlines are looked at: when the server was too
            // busy to run this task until after a deadline, what the client sent meanwhile
            // is waiting in the socket, and a client that did send in time is not late.
            tokio::select! {
                biased;
                () = self.state.shutdown().cancelled() => return Ending::Shutdown,
                kick = kicked(&mut self.kick) => match kick {
                    Some(kick) => return Ending::Kicked(kick),
                    // The registry let go of this connection without a word (it left).
                    None => self.kick = None,
                },
                frame = stream.next() => {
                    self.heard(Instant::now());
                    let ending = match frame {
                        Some(Ok(message)) => self.on_message(message).await,
                        Some(Err(err)) => Some(self.on_read_error(err)),
                        None => {
                            tracing::debug!(conn = self.conn, "connection ended without a close frame");
                            Some(Ending::Dropped)
                        }
                    };
                    if let Some(ending) = ending {
                        return ending;
                    }
                }
                () = self.silence.as_mut() => return self.silent(),
                () = due(&mut self.renew) => {
                    if let Some(ending) = self.renew_ice_servers() {
                        return ending;
                    }
                }
            }
        }
    }

    /// Moves the silence deadline on after a frame arrived at `now`. Before joining, the
    /// deadline stays where it is: it counts from the upgrade, so a client cannot keep a
    /// connection that never joins open by sending pings.
    fn heard(&mut self, now: Instant) {
        if self.joined.is_some() {
            let deadline = now + self.silence_allowed();
            self.silence.as_mut().reset(deadline);
        }
    }

    /// The silence a joined connection is allowed: the configured timeout, but never less
    /// than two heartbeats, however long the time-to-live makes them.
    fn silence_allowed(&self) -> Duration {
        let heartbeat =
            Duration::from_secs(crate::heartbeat_secs(self.state.config().presence_ttl));
        self.state
            .config()
            .limits
            .silence_timeout
            .max(heartbeat * 2)
    }

    /// The ending of a connection whose deadline passed in silence.
    fn silent(&self) -> Ending {
        if self.joined.is_some() {
            tracing::debug!(conn = self.conn, "closing a silent connection");
            Ending::Fatal {
                refusal: None,
                code: CloseCode::Policy,
                reason: "no sign of life",
            }
        } else {
            tracing::debug!(conn = self.conn, "closing a connection that never joined");
            Ending::Fatal {
                refusal: Some(Refusal::new(
                    ErrorCode::NotJoined,
                    format!(
                        "join within {} s of connecting",
                        self.state.config().limits.join_timeout.as_secs()
                    ),
                )),
                code: CloseCode::Policy,
                reason: "no join",
            }
        }
    }

    /// Handles one frame; `Some` ends the connection.
    async fn on_message(&mut self, message: Message) -> Option<Ending> {
        if let Message::Close(frame) = &message {
            tracing::trace!(conn = self.conn, ?frame, "client closed");
            return Some(Ending::ClientClosed);
        }
        let now = Instant::now();
        match self.limiter.check(now) {
            Verdict::Allow => {}
            Verdict::Drop => {
                return self.refuse(Refusal::new(
                    ErrorCode::RateLimited,
                    "too many messages; this one was dropped",
                ));
            }
            Verdict::Disconnect => {
                tracing::info!(conn = self.conn, "closing a connection that keeps flooding");
                return Some(Ending::Fatal {
                    refusal: Some(Refusal::new(
                        ErrorCode::RateLimited,
                        "too many messages for too long; closing the connection",
                    )),
                    code: CloseCode::Policy,
                    reason: "message flood",
                });
            }
        }
        if let Some(id) = &self.joined {
            self.state.registry().touch(id, self.conn, now);
        }
        match message {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(_) => self.refuse(Refusal::new(
                ErrorCode::BinaryNotSupported,
                "this protocol uses JSON text frames only",
            )),
            // tungstenite answers pings itself; either kind is just a sign of life.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => None,
        }
    }

    async fn on_text(&mut self, text: &str) -> Option<Ending> {
        let message = match ClientMessage::from_json(text) {
            Ok(message) => message,
            Err(err) => {
                return self.refuse(Refusal::new(
                    ErrorCode::MalformedMessage,
                    format!(
                        "not a message of this protocol: {}",
                        quote(&err.to_string())
                    ),
                ));
            }
        };
        let Some(id) = self.joined.clone() else {
            return match message {
                ClientMessage::Join {
                    version,
                    nick,
                    token,
                    place,
                } => self.join(version, &nick, token, &place).await,
                _ => self.refuse(Refusal::new(
                    ErrorCode::NotJoined,
                    "send a join message first",
                )),
            };
        };
        match message {
            ClientMessage::Join { .. } => self.refuse(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this connection has already joined",
            )),
            ClientMessage::Heartbeat => None,
            ClientMessage::MakeCode => self.make_code(&id).await,
            ClientMessage::Signal { to, payload, lane } => {
                // A candidate the filter drops is simply not relayed.
                let payload = self.filter(payload)?;
                let now = Instant::now();
                let relayed = self.state.registry().relay(&id, &to, payload, lane, now);
                match relayed {
                    Ok(()) => None,
                    // One who keeps sending what the addressee cannot take in is cut off as a
                    // flooder is; the addressee is left alone.
                    Err(refusal) if refusal.code == ErrorCode::PeerBusy => {
                        if self.busy.check(now) != Verdict::Allow {
                            tracing::info!(
                                conn = self.conn,
                                "closing a connection that keeps flooding another client with signals"
                            );
                            return Some(Ending::Fatal {
                                refusal: Some(Refusal::new(
                                    ErrorCode::PeerBusy,
                                    "you kept sending someone more than they can take in; \
                                     closing the connection",
                                )),
                                code: CloseCode::Policy,
                                reason: "signal flood",
                            });
                        }
                        self.refuse(refusal)
                    }
                    Err(refusal) => self.refuse(refusal),
                }
            }
            ClientMessage::Leave => {
                self.state.registry().leave(&id, self.conn);
                // The connection stays open and may join again, say under another nick,
                // within the join timeout.
                self.joined = None;
                self.kick = None;
                self.renew = None;
                let join_by = Instant::now() + self.state.config().limits.join_timeout;
                self.silence.as_mut().reset(join_by);
                None
            }
        }
    }

    /// The signal as the configured candidate filter has it: an ICE candidate rewritten, or
    /// `None` when dropped; everything else as it is.
    fn filter(&self, payload: SignalPayload) -> Option<SignalPayload> {
        let Some(filter) = &self.state.config().candidates else {
            return Some(payload);
        };
        match payload {
            SignalPayload::IceCandidate {
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } if !candidate.is_empty() => Some(SignalPayload::IceCandidate {
                candidate: (filter.0)(&candidate)?,
                sdp_mid,
                sdp_m_line_index,
            }),
            other => Some(other),
        }
    }

    /// Sends the client fresh TURN credentials before its current ones expire, and plans the
    /// next renewal.
    fn renew_ice_servers(&mut self) -> Option<Ending> {
        self.renew = renewal(&self.state);
        let id = self.joined.as_ref()?;
        let ice_servers = self.state.config().ice.servers_for(id, SystemTime::now());
        let text = encode(&ServerMessage::IceServers { ice_servers });
        tracing::trace!(conn = self.conn, "renewed TURN credentials");
        self.queue(Outbound::Text(text))
    }

    /// Tells the client its message was refused; the connection goes on unless the client
    /// does not even read its replies.
    fn refuse(&self, refusal: Refusal) -> Option<Ending> {
        tracing::debug!(conn = self.conn, code = ?refusal.code, message = %refusal.message, "refused a message");
        let reply = ServerMessage::Error {
            code: refusal.code,
            message: refusal.message,
        };
        self.queue(Outbound::Text(encode(&reply)))
    }

    /// Queues a message for the client; one over its byte budget is disconnected.
    fn queue(&self, message: Outbound) -> Option<Ending> {
        match self.tx.push(message) {
            Ok(()) => None,
            Err(Refused::Full) => Some(Ending::Kicked(Kick::TooSlow)),
            Err(Refused::Closed) => Some(Ending::Dropped),
        }
    }
}

/// At most [`MAX_QUOTED_CHARS`] of `text`, marked where it was cut.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let quoted: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{quoted}…")
    } else {
        quoted
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
        claimed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_quoted_briefly() {
        assert_eq!(quote("short"), "short");
        let long = "x".repeat(10_000);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(quoted.ends_with('…'));
    }
}
