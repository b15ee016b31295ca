//! Ferry's wire contract: the only place that defines what goes over the signaling WebSocket
//! and over the browsers' data channels.
//!
//! Everything here is plain serde data so it builds for the server (native) and the app
//! (`wasm32-unknown-unknown`) alike. Messages are JSON objects tagged with `"type"`;
//! the exact shapes are pinned by tests in `tests/json.rs` so the two ends cannot drift.
//! Where a message's meaning takes more than its shape, such as how presence batches add up to
//! a list of people ([`Roster`]), that meaning is written here once for every client.

#![forbid(unsafe_code)]

pub mod chunk;
mod cluster;
mod codec;
mod ids;
mod nick;
pub mod pieces;
mod place;
mod roster;
mod signaling;
mod transfer;

pub use cluster::ClusterMessage;
pub use codec::{DecodeError, Wire};
pub use ids::{IdError, PeerId, RoomId, SessionToken, TransferId};
pub use nick::{Nick, NickError};
pub use place::{LobbyScope, PairCode, PairCodeError, Place, ServerInfo};
pub use roster::{Roster, RosterChange};
pub use signaling::{
    ClientMessage, ErrorCode, IceServer, PRESENCE_BATCH_MILLIS, PROTOCOL_VERSION, ServerMessage,
    SignalPayload, UserInfo,
};
pub use transfer::{
    BLOCK_SIZE, DATA_CHANNEL_PREFIX, DigestHex, FileMeta, HeldFile, TEXT_LIMIT,
    TRANSFER_CHANNEL_LABEL, TRANSFER_VERSION, TransferMessage,
};
