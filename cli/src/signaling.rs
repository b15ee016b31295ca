//! The connection to the signaling server: join, heartbeats, signals out and in, and a
//! reconnect with the session's token when the socket drops (peer connections do not care).

use std::sync::Arc;
use std::time::Duration;

use ferry_core::backoff::Backoff;
use ferry_protocol::{
    ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, PeerId, Place, RoomId, ServerMessage,
    SessionToken, SignalPayload, UserInfo, Wire,
};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::args::Endpoint;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a join may take from connect to welcome.
const JOIN_DEADLINE: Duration = Duration::from_secs(15);

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// No connection to the server.
    #[error("cannot reach the Ferry server at {url}: {reason}")]
    Unreachable {
        /// Where it was looked for.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server said no.
    #[error("the server refused to let {nick} join: {message}")]
    Refused {
        /// The nick asked for.
        nick: String,
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
}

/// What the server said when this client joined.
#[derive(Clone, Debug)]
pub struct Welcome {
    /// This client's id.
    pub id: PeerId,
    /// The nick it has (as the server spelled it).
    pub nick: String,
    /// What reclaims this session after a drop.
    pub token: SessionToken,
    /// Everyone in the place, this client among them.
    pub users: Vec<UserInfo>,
    /// The STUN and TURN servers to use.
    pub ice_servers: Vec<IceServer>,
    /// Whether only relayed paths may be used.
    pub relay_only: bool,
    /// The room joined, when a code or a link named one.
    pub room: Option<RoomId>,
    heartbeat: Duration,
}

/// What the server tells a joined client.
#[derive(Debug)]
pub enum Event {
    /// A peer's signal, for one of its connections.
    Signal {
        /// Who sent it.
        from: PeerId,
        /// The offer, answer or candidate.
        payload: SignalPayload,
        /// Which of the connections with them.
        lane: u32,
    },
    /// People came and went.
    Users {
        /// Who joined.
        joined: Vec<UserInfo>,
        /// Who left or went away.
        left: Vec<PeerId>,
    },
    /// The socket came back: this is the list as it is now.
    Rejoined(Vec<UserInfo>),
    /// Fresh TURN credentials.
    IceServers(Vec<IceServer>),
    /// A refusal of something this client sent (an unknown peer, a limit), in words.
    Error(String),
    /// The server is gone for good, or ended this session.
    Lost(String),
}

/// Sends to the server; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox(mpsc::UnboundedSender<ClientMessage>);

impl Outbox {
    /// Sends `payload` to `to` for the connection `lane`; queued while the socket is down.
    pub fn signal(&self, to: &PeerId, payload: SignalPayload, lane: u32) {
        // The receiver lives as long as the session; a send after it ended has nobody to
        // reach, which is the same as the server being gone.
        let _ = self.0.send(ClientMessage::Signal {
            to: to.clone(),
            payload,
            lane,
        });
    }

    /// Says goodbye, so others see this client leave at once.
    pub fn leave(&self) {
        let _ = self.0.send(ClientMessage::Leave);
    }
}

/// How to reach the server.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Its address and the place.
    pub endpoint: Endpoint,
    /// The TLS settings, for a `wss:` address.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A joined session's connection to the server, as [`join`] hands it over.
#[derive(Debug)]
pub struct Joined {
    /// What the server said.
    pub welcome: Welcome,
    /// Sends to the server.
    pub outbox: Outbox,
    /// What the server says from now on.
    pub events: mpsc::UnboundedReceiver<Event>,
    /// The task that keeps the connection; it ends once a leave has gone out.
    pub task: tokio::task::JoinHandle<()>,
}

/// Joins as `nick` (reclaiming `token`'s session when given), and keeps the session up.
///
/// # Errors
/// When the server cannot be reached or refuses the join.
pub async fn join(
    connection: Connection,
    nick: &str,
    token: Option<SessionToken>,
) -> Result<Joined, JoinError> {
    let place = connection.endpoint.place.clone();
    let (socket, welcome) = match connect(&connection, nick, token.clone(), place.clone()).await {
        // A token the server no longer knows (or of another place) only fails the reclaim.
        Err(JoinError::Refused {
            code: ErrorCode::InvalidToken,
            ..
        }) if token.is_some() => connect(&connection, nick, None, place.clone()).await?,
        other => other?,
    };
    let (outbox, queued) = mpsc::unbounded_channel();
    let (events, heard) = mpsc::unbounded_channel();
    let session = Session {
        connection,
        nick: welcome.nick.clone(),
        token: welcome.token.clone(),
        // A code works once: a rejoin goes to the room it led to, which the welcome names.
        place: match (&welcome.room, place) {
            (Some(room), _) => Place::Room(room.clone()),
            (None, place) => place,
        },
        heartbeat: welcome.heartbeat,
        queued,
        events,
    };
    let task = tokio::spawn(session.run(socket));
    Ok(Joined {
        welcome,
        outbox: Outbox(outbox),
        events: heard,
        task,
    })
}

struct Session {
    connection: Connection,
    nick: String,
    token: SessionToken,
    place: Place,
    heartbeat: Duration,
    queued: mpsc::UnboundedReceiver<ClientMessage>,
    events: mpsc::UnboundedSender<Event>,
}

impl Session {
    async fn run(mut self, mut socket: Socket) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        loop {
            let leaving = self.serve(&mut socket).await;
            if leaving {
                let _ = socket.close(None).await;
                return;
            }
            loop {
                tokio::time::sleep(backoff.next_delay(random_unit())).await;
                let again = connect(
                    &self.connection,
                    &self.nick,
                    Some(self.token.clone()),
                    self.place.clone(),
                )
                .await;
                match again {
                    Ok((fresh, welcome)) => {
                        backoff.reset();
                        socket = fresh;
                        self.token = welcome.token;
                        let _ = self.events.send(Event::Rejoined(welcome.users));
                        let _ = self.events.send(Event::IceServers(welcome.ice_servers));
                        break;
                    }
                    Err(JoinError::Unreachable { .. }) => {}
                    Err(JoinError::Refused { code, message, .. })
                        if code != ErrorCode::Unavailable =>
                    {
                        let _ = self.events.send(Event::Lost(message));
                        return;
                    }
                    Err(JoinError::Refused { .. }) => {}
                }
                if self.events.is_closed() {
                    return;
                }
            }
        }
    }

    /// Relays until the socket drops (false) or this client leaves (true).
    async fn serve(&mut self, socket: &mut Socket) -> bool {
        let mut beat = tokio::time::interval(self.heartbeat);
        beat.tick().await;
        loop {
            tokio::select! {
                message = self.queued.recv() => {
                    let Some(message) = message else { return true };
                    let leave = message == ClientMessage::Leave;
                    if send(socket, &message).await.is_err() {
                        return leave;
                    }
                    if leave {
                        return true;
                    }
                }
                _ = beat.tick() => {
                    if send(socket, &ClientMessage::Heartbeat).await.is_err() {
                        return false;
                    }
                }
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                        Some(Ok(_)) => continue,
                    };
                    if let Ok(message) = ServerMessage::from_json(&text)
                        && self.read(message)
                    {
                        return true;
                    }
                }
            }
        }
    }

    /// Hands a message on; true when the session ended for good.
    fn read(&self, message: ServerMessage) -> bool {
        let event = match message {
            ServerMessage::Signal {
                from,
                payload,
                lane,
                ..
            } => Event::Signal {
                from,
                payload,
                lane,
            },
            ServerMessage::UsersChanged { joined, left, away } => Event::Users {
                joined,
                left: left.into_iter().chain(away).collect(),
            },
            ServerMessage::IceServers { ice_servers } => Event::IceServers(ice_servers),
            ServerMessage::Error { code, message } if code.is_fatal() => {
                let _ = self.events.send(Event::Lost(message));
                return true;
            }
            ServerMessage::Error { message, .. } => Event::Error(message),
            ServerMessage::Welcome { .. } | ServerMessage::PairCode { .. } => return false,
        };
        self.events.send(event).is_err()
    }
}

async fn send(socket: &mut Socket, message: &ClientMessage) -> Result<(), ()> {
    socket
        .send(Message::Text(message.to_json().into()))
        .await
        .map_err(|_| ())
}

/// One connection and join, up to the welcome.
async fn connect(
    connection: &Connection,
    nick: &str,
    token: Option<SessionToken>,
    place: Place,
) -> Result<(Socket, Welcome), JoinError> {
    let url = connection.endpoint.socket.as_str();
    let unreachable = |reason: String| JoinError::Unreachable {
        url: connection.endpoint.origin.to_string(),
        reason,
    };
    let connector = connection
        .tls
        .clone()
        .map_or(Connector::Plain, Connector::Rustls);
    let attempt = async {
        let (mut socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(connector))
                .await
                .map_err(|error| unreachable(error.to_string()))?;
        let join = ClientMessage::Join {
            version: PROTOCOL_VERSION,
            nick: nick.to_owned(),
            token,
            place,
        };
        send(&mut socket, &join)
            .await
            .map_err(|()| unreachable("the connection closed".into()))?;
        loop {
            let text = match socket.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    return Err(unreachable("the connection closed before a welcome".into()));
                }
                Some(Ok(_)) => continue,
            };
            match ServerMessage::from_json(&text) {
                Ok(ServerMessage::Welcome {
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
                    let welcome = Welcome {
                        id,
                        nick: nick.as_str().to_owned(),
                        token,
                        users,
                        ice_servers,
                        relay_only,
                        room,
                        heartbeat: Duration::from_secs(heartbeat_secs.clamp(1, 3600)),
                    };
                    return Ok((socket, welcome));
                }
                Ok(ServerMessage::Error { code, message }) => {
                    return Err(JoinError::Refused {
                        nick: nick.to_owned(),
                        code,
                        message,
                    });
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(JOIN_DEADLINE, attempt)
        .await
        .map_err(|_| unreachable("no answer within 15 s".into()))?
}

/// A number in [0, 1) for a backoff's jitter.
pub fn random_unit() -> f64 {
    let mut bytes = [0; 4];
    // Without randomness the jitter is only less spread out.
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}
