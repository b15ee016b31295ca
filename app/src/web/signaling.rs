//! The signaling client: joins with a nickname in a place (the lobby, a room, or the room a
//! pairing code leads to), keeps the user online with heartbeats, relays SDP and ICE for
//! [`super::peer::PeerLink`]s, asks for pairing codes, and reconnects by itself with backoff
//! when the connection drops, reclaiming its nick in its place with its token.
//!
//! Losing this connection never touches peer connections: transfers in flight carry on, since
//! their bytes never pass through the server.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ferry_protocol::{
    ClientMessage, ErrorCode, IceServer, Nick, PROTOCOL_VERSION, PairCode, PeerId, Place, RoomId,
    ServerMessage, SessionToken, SignalPayload, UserInfo, Wire,
};
use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use wasm_bindgen_futures::spawn_local;

use super::{back_off, log, sleep};
use crate::core::backoff::Backoff;

/// What the signaling connection reports.
#[derive(Clone, Debug)]
pub enum SignalingEvent {
    /// Joined (first time, or again after a reconnect).
    Welcome {
        /// This user's id now.
        id: PeerId,
        /// This user's nick as stored.
        nick: Nick,
        /// Everyone the server has announced so far: after a reconnect, this user too
        /// ([`ferry_protocol::Roster`] makes the list of the others).
        users: Vec<UserInfo>,
        /// For new peer connections.
        ice_servers: Vec<IceServer>,
        /// The server wants relayed connections only.
        relay_only: bool,
        /// The room joined by a pairing code, to keep in the address.
        room: Option<RoomId>,
    },
    /// A pairing code for this session's room.
    PairCode {
        /// The digits to show.
        code: PairCode,
        /// How long it stays good, in seconds.
        expires_in_secs: u64,
    },
    /// The server refused a request after joining (a pairing code, say); the session goes on.
    Said(ErrorCode, String),
    /// Fresh TURN credentials for open and new peer connections.
    IceServers(Vec<IceServer>),
    /// Joining was refused; the client stopped.
    Refused {
        /// The server's reason.
        code: ErrorCode,
        /// What to tell the user.
        message: String,
    },
    /// The connection dropped; reconnecting.
    Lost,
    /// The server could not be reached for the first join (this device is offline, or the
    /// server is down); trying again.
    Offline,
    /// The server cannot take a join just now (its shared store is restarting); this side
    /// tries again by itself.
    Restarting,
    /// Who came online, who left and who went away since the last such event.
    UsersChanged {
        /// Who came online; some may be known already, and everyone hears of their own
        /// arrival too.
        joined: Vec<UserInfo>,
        /// Who left.
        left: Vec<PeerId>,
        /// Who cannot be reached through the server for now, and may come back.
        away: Vec<PeerId>,
    },
    /// A relayed WebRTC signal.
    Signal {
        /// The sender.
        from: PeerId,
        /// The sender's nick.
        from_nick: Nick,
        /// The signal.
        payload: SignalPayload,
        /// Which peer connection between the two browsers it is for.
        lane: u32,
    },
}

/// Receives signaling events.
pub type SignalingEvents = Rc<dyn Fn(SignalingEvent)>;

/// A running signaling client; dropping it stops it.
#[derive(Debug)]
pub struct Signaling {
    outbox: mpsc::UnboundedSender<ClientMessage>,
    stopped: Rc<Cell<bool>>,
}

impl Signaling {
    /// Connects to `url` (a `ws:` or `wss:` URL) and joins as `nick` in `place`.
    pub fn start(url: String, nick: String, place: Place, events: SignalingEvents) -> Self {
        let (outbox, queue) = mpsc::unbounded();
        let stopped = Rc::new(Cell::new(false));
        spawn_local(run(url, nick, place, events, queue, Rc::clone(&stopped)));
        Self { outbox, stopped }
    }

    /// Asks for a pairing code into this session's room.
    pub fn make_code(&self) {
        let _ = self.outbox.unbounded_send(ClientMessage::MakeCode);
    }

    /// Relays `payload` for the peer connection on `lane` to `to`; queued while the
    /// connection is down.
    pub fn signal(&self, to: PeerId, payload: SignalPayload, lane: u32) {
        let _ = self
            .outbox
            .unbounded_send(ClientMessage::Signal { to, payload, lane });
    }

    /// Says goodbye to the server and stops.
    pub fn leave(&self) {
        let _ = self.outbox.unbounded_send(ClientMessage::Leave);
        self.stopped.set(true);
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.stopped.set(true);
        self.outbox.close_channel();
    }
}

/// The URL of the signaling endpoint on the page's own origin.
pub fn same_origin_url() -> String {
    let location = web_sys::window()
        .expect("Ferry runs in a window")
        .location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/ws")
}

/// How one connection ended.
enum Outcome {
    Lost,
    Refused(ErrorCode, String),
    Stopped,
}

/// State kept across connections.
struct Session {
    token: Option<SessionToken>,
    /// Where to join: a pairing code is replaced by its room once it led there, since a code
    /// works only once.
    place: Place,
    joined_once: bool,
    backoff: Backoff,
}

async fn run(
    url: String,
    nick: String,
    place: Place,
    events: SignalingEvents,
    mut outbox: mpsc::UnboundedReceiver<ClientMessage>,
    stopped: Rc<Cell<bool>>,
) {
    let mut session = Session {
        token: None,
        place,
        joined_once: false,
        backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(10)),
    };
    while !stopped.get() {
        match connect_once(&url, &nick, &mut session, &events, &mut outbox).await {
            Outcome::Stopped => return,
            Outcome::Refused(ErrorCode::InvalidToken, _) => {
                // The server forgot this session (e.g. it restarted): join afresh.
                session.token = None;
            }
            Outcome::Refused(ErrorCode::Unavailable, _) => {
                events(SignalingEvent::Restarting);
                back_off(&mut session.backoff).await;
            }
            Outcome::Refused(code, message) => {
                events(SignalingEvent::Refused { code, message });
                return;
            }
            Outcome::Lost => {
                events(if session.joined_once {
                    SignalingEvent::Lost
                } else {
                    SignalingEvent::Offline
                });
                back_off(&mut session.backoff).await;
            }
        }
    }
}

async fn connect_once(
    url: &str,
    nick: &str,
    session: &mut Session,
    events: &SignalingEvents,
    outbox: &mut mpsc::UnboundedReceiver<ClientMessage>,
) -> Outcome {
    let Ok(socket) = WebSocket::open(url) else {
        return Outcome::Lost;
    };
    let (mut write, read) = socket.split();
    let mut read = read.fuse();
    let join = ClientMessage::Join {
        version: PROTOCOL_VERSION,
        nick: nick.to_owned(),
        token: session.token.clone(),
        place: session.place.clone(),
    };
    if write.send(Message::Text(encode(&join))).await.is_err() {
        return Outcome::Lost;
    }
    let heartbeat_secs = loop {
        match decode(read.next().await) {
            Frame::Message(ServerMessage::Welcome {
                id,
                nick,
                token,
                users,
                ice_servers,
                relay_only,
                heartbeat_secs,
                room,
                ..
            }) => {
                if let Some(room) = &room {
                    session.place = Place::Room(room.clone());
                }
                session.token = Some(token);
                session.joined_once = true;
                session.backoff.reset();
                events(SignalingEvent::Welcome {
                    id,
                    nick,
                    users,
                    ice_servers,
                    relay_only,
                    room,
                });
                break heartbeat_secs;
            }
            Frame::Message(ServerMessage::Error { code, message }) => {
                return Outcome::Refused(code, message);
            }
            Frame::Message(_) | Frame::Skip => continue,
            Frame::Closed => return Outcome::Lost,
        }
    };
    let period = u32::try_from(heartbeat_secs.clamp(1, 3600) * 1000).unwrap_or(30_000);
    let mut tick = Box::pin(sleep(period).fuse());
    loop {
        futures::select! {
            frame = read.next() => match decode(frame) {
                Frame::Message(message) => {
                    if let Some(outcome) = dispatch(message, events) {
                        return outcome;
                    }
                }
                Frame::Skip => {}
                Frame::Closed => return Outcome::Lost,
            },
            queued = outbox.next() => {
                let Some(queued) = queued else {
                    return Outcome::Stopped;
                };
                let leaving = queued == ClientMessage::Leave;
                if write.send(Message::Text(encode(&queued))).await.is_err() {
                    return Outcome::Lost;
                }
                if leaving {
                    return Outcome::Stopped;
                }
            },
            () = tick => {
                if write.send(Message::Text(encode(&ClientMessage::Heartbeat))).await.is_err() {
                    return Outcome::Lost;
                }
                tick = Box::pin(sleep(period).fuse());
            },
        }
    }
}

/// Passes a server message on; returns how the connection ends, if it does.
fn dispatch(message: ServerMessage, events: &SignalingEvents) -> Option<Outcome> {
    match message {
        ServerMessage::UsersChanged { joined, left, away } => {
            events(SignalingEvent::UsersChanged { joined, left, away });
        }
        ServerMessage::Signal {
            from,
            from_nick,
            payload,
            lane,
        } => events(SignalingEvent::Signal {
            from,
            from_nick,
            payload,
            lane,
        }),
        ServerMessage::IceServers { ice_servers } => {
            events(SignalingEvent::IceServers(ice_servers));
        }
        ServerMessage::Error { code, message } if code.is_fatal() => {
            log(&format!("the server ended the session: {message}"));
            return Some(Outcome::Lost);
        }
        ServerMessage::PairCode {
            code,
            expires_in_secs,
        } => events(SignalingEvent::PairCode {
            code,
            expires_in_secs,
        }),
        ServerMessage::Error { code, message } => {
            log(&format!("the server said: {message}"));
            events(SignalingEvent::Said(code, message));
        }
        ServerMessage::Welcome { .. } => log("unexpected second welcome"),
    }
    None
}

fn encode(message: &ClientMessage) -> String {
    message.to_json()
}

/// One read from the socket, sorted.
enum Frame {
    Message(ServerMessage),
    /// Something this client cannot read (logged), or an error event that a close follows.
    Skip,
    Closed,
}

fn decode(frame: Option<Result<Message, WebSocketError>>) -> Frame {
    match frame {
        Some(Ok(Message::Text(text))) => match ServerMessage::from_json(&text) {
            Ok(message) => Frame::Message(message),
            Err(error) => {
                log(&format!("unreadable server message: {error}"));
                Frame::Skip
            }
        },
        Some(Ok(Message::Bytes(_)) | Err(WebSocketError::ConnectionError)) => Frame::Skip,
        Some(Err(_)) | None => Frame::Closed,
    }
}
