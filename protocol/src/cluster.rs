//! What signaling instances tell each other through Redis when several of them form one
//! service: who is listed where, and signals for a session another instance holds.
//!
//! Browsers never see these. A place travels as its key ([`ClusterMessage::Listed::place`]):
//! `lobby`, `lobby:private`, `lobby:ADDRESS` or `room:ID`, the same string the instances use
//! in their Redis keys.

use serde::{Deserialize, Serialize};

use crate::{Nick, PeerId, SignalPayload};

/// One instance's news for the others, JSON-encoded on a Redis channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClusterMessage {
    /// A session on `instance` is listed in `place`: it joined, or came back from away.
    Listed {
        instance: String,
        place: String,
        id: PeerId,
        nick: Nick,
    },
    /// A session on `instance` is away: its connection dropped a while ago, and it may come
    /// back.
    Away { instance: String, id: PeerId },
    /// A session on `instance` left, or expired.
    Left { instance: String, id: PeerId },
    /// A signal from `from` (in `place`) for `to`, a session of the instance this is sent to.
    Signal {
        from: PeerId,
        from_nick: Nick,
        place: String,
        to: PeerId,
        payload: SignalPayload,
        lane: u32,
    },
}
