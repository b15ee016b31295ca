//! Messages between a browser and the signaling server, as JSON text frames over `GET /ws`.
//!
//! A connection's first message must be [`ClientMessage::Join`]; it carries
//! [`PROTOCOL_VERSION`] so an outdated client gets a clear refusal instead of odd failures.

use serde::{Deserialize, Serialize};

use crate::{Nick, PairCode, PeerId, Place, RoomId, SessionToken};

/// The version of this contract; the server refuses a `join` that names another. Version 2
/// announces presence in batches ([`ServerMessage::UsersChanged`]).
pub const PROTOCOL_VERSION: u32 = 2;

/// The most time between a change of who is online and the message that announces it.
pub const PRESENCE_BATCH_MILLIS: u64 = 100;

/// What a browser sends to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Claims a nickname. With the token of an earlier session that is still within its
    /// time-to-live, reclaims that session's nick and id without anyone seeing a leave or join.
    Join {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// The wanted nickname, validated by the server with [`Nick::new`] so that an invalid
        /// one gets an [`ErrorCode::InvalidNick`] reply that says why.
        nick: String,
        /// The token from an earlier [`ServerMessage::Welcome`], when reconnecting.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<SessionToken>,
        /// Where to join: the lobby unless it names a room or a pairing code. A token reclaims
        /// a session only in the place it was in.
        #[serde(default, skip_serializing_if = "Place::is_lobby")]
        place: Place,
    },
    /// Asks for a pairing code that leads one other person into this session's room; the
    /// answer is [`ServerMessage::PairCode`]. A session holds one code at a time: asking again
    /// replaces it.
    MakeCode,
    /// A sign of life that keeps the user online; send one every
    /// [`ServerMessage::Welcome::heartbeat_secs`].
    Heartbeat,
    /// Asks the server to relay `payload` to the user `to`, and to nobody else.
    Signal {
        /// The addressee.
        to: PeerId,
        /// What to deliver.
        payload: SignalPayload,
        /// Which of the peer connections between the two browsers it is for: 0 for the first,
        /// more when a transfer is striped over several.
        #[serde(default, skip_serializing_if = "is_zero")]
        lane: u32,
    },
    /// Leaves at once, telling everyone, instead of waiting for the connection to close.
    Leave,
}

/// What the server sends to a browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The join succeeded.
    Welcome {
        /// This user's id.
        id: PeerId,
        /// This user's nick as the server stored it (trimmed).
        nick: Nick,
        /// Present it in a later `join` to reclaim this nick and id after a reconnect.
        token: SessionToken,
        /// True when this join reclaimed an earlier session with its token.
        resumed: bool,
        /// Everyone online when the last [`ServerMessage::UsersChanged`] went out (this user
        /// too, after a reconnect: skip its own id); the next one brings whatever changed
        /// since.
        users: Vec<UserInfo>,
        /// ICE servers for `RTCPeerConnection`; empty on a LAN. TURN servers with short-lived
        /// credentials are renewed with [`ServerMessage::IceServers`] before they expire.
        ice_servers: Vec<IceServer>,
        /// The server asks every browser to use relayed candidates only
        /// (`iceTransportPolicy: "relay"`), so no peer learns another's IP address.
        #[serde(default)]
        relay_only: bool,
        /// How often to send [`ClientMessage::Heartbeat`], in seconds.
        heartbeat_secs: u64,
        /// The room joined, when the join named it by a pairing code: keep it (in the page's
        /// address) to come back after a reload. Never sent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
    },
    /// A pairing code for this session's room, good for one join until it expires or this
    /// session leaves the room.
    PairCode {
        /// The six digits to show.
        code: PairCode,
        /// How long it stays good, in seconds.
        expires_in_secs: u64,
    },
    /// Who came online and who left (closed their connection or expired) or went away since
    /// the last such message. Changes are gathered and sent at most every
    /// [`PRESENCE_BATCH_MILLIS`], so a crowd joining at once costs each client a few messages,
    /// not one per person. Apply it as a set update: remove `left` and `away`, then add
    /// `joined`; a client may find itself in `joined`, and users its welcome already listed.
    UsersChanged {
        /// Who came online, or came back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        joined: Vec<UserInfo>,
        /// Who left.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left: Vec<PeerId>,
        /// Who can no longer be reached through the server but may come back under the same
        /// id: their connection dropped without a goodbye a while ago. Off the list as those
        /// who left are, but a connection already made with them may well still work.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        away: Vec<PeerId>,
    },
    /// A relayed signal; `from` and `from_nick` are stamped by the server, never by the sender.
    Signal {
        /// The sender's id.
        from: PeerId,
        /// The sender's nick.
        from_nick: Nick,
        /// What the sender sent.
        payload: SignalPayload,
        /// The peer connection it is for, as the sender said.
        #[serde(default, skip_serializing_if = "is_zero")]
        lane: u32,
    },
    /// Fresh ICE servers, sent before the TURN credentials of the last ones expire: apply them
    /// to open peer connections (`setConfiguration`) and use them for new ones.
    IceServers {
        /// The same servers as before, with new credentials.
        ice_servers: Vec<IceServer>,
    },
    /// A request was refused; see [`ErrorCode`] for which ones end the connection.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
}

fn is_zero(lane: &u32) -> bool {
    *lane == 0
}

/// One online user as the others see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Their id: the address for [`ClientMessage::Signal`].
    pub id: PeerId,
    /// Their nick.
    pub nick: Nick,
}

/// The WebRTC negotiation data one browser relays to another through the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalPayload {
    /// An SDP offer.
    Offer {
        /// The session description.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The session description.
        sdp: String,
    },
    /// A trickled ICE candidate.
    IceCandidate {
        /// The `candidate` attribute line.
        candidate: String,
        /// The media stream identification tag the candidate belongs to.
        #[serde(default)]
        sdp_mid: Option<String>,
        /// The index of the m-line the candidate belongs to.
        #[serde(default)]
        sdp_m_line_index: Option<u16>,
    },
}

/// An ICE server for `RTCPeerConnection`'s configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// The TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why the server refused a message.
///
/// Fatal ones are followed by a close frame; after the others the connection keeps working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The `join` named another protocol version. Fatal.
    UnsupportedVersion,
    /// The nickname failed validation; the message says why.
    InvalidNick,
    /// Someone online holds this nick (compared without case).
    NickTaken,
    /// The token does not belong to the session holding this nick.
    InvalidToken,
    /// Anything other than `join` was sent before joining.
    NotJoined,
    /// A second `join` on a connection that already joined.
    AlreadyJoined,
    /// The text frame was not a message of this protocol.
    MalformedMessage,
    /// A binary frame: this protocol is JSON text only.
    BinaryNotSupported,
    /// The frame is larger than the server accepts. Fatal.
    MessageTooLarge,
    /// Too many messages too quickly: this one was dropped. Fatal when it goes on.
    RateLimited,
    /// A signal's addressee is not online.
    UnknownPeer,
    /// A signal's addressee has more waiting from this sender, or from everyone, than it
    /// takes: this one was dropped. Fatal when it goes on.
    PeerBusy,
    /// As many people from this address (an IPv6 /64) are online, or were a moment ago, as the
    /// server lets in.
    TooManySessions,
    /// The server is shutting down or the session was taken over by a reconnect. Fatal.
    SessionEnded,
    /// The server has no lobby: make a private room or enter a pairing code.
    NoLobby,
    /// The room has as many people as a room takes.
    RoomFull,
    /// No room has this pairing code: it was mistyped, used or expired. Counts as a wrong try.
    WrongCode,
    /// Too many wrong pairing codes from this address, or from everyone, lately; the message
    /// says how long to wait.
    TooManyTries,
    /// A pairing code was asked for outside a private room, or the server holds as many codes
    /// as it may.
    NoCode,
    /// The service cannot take a join just now (its shared store is out of reach, as while it
    /// restarts): the page tries again by itself.
    Unavailable,
}

impl ErrorCode {
    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::UnsupportedVersion | Self::MessageTooLarge | Self::SessionEnded
        )
    }
}
