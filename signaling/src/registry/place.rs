//! One place people meet, the lobby (or one network's lobby) or one private room: its own
//! nick namespace, its members and its presence batches. Nobody outside it sees any of it.

use std::collections::HashSet;

use ferry_protocol::{PeerId, RoomId};

use super::names::Names;
use crate::address::Network;
use crate::changes::Changes;

/// Which place: the lobby of everyone (`None`) or of one network, or a private room.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PlaceKey {
    Lobby(Option<Network>),
    Room(RoomId),
}

/// One place's nicks, members and unannounced changes. It exists while someone is in it:
/// the registry drops it with its last member.
#[derive(Debug, Default)]
pub(super) struct Place {
    /// Who holds each nick here, WebSocket sessions and (in a lobby) classic registrations.
    pub(super) names: Names,
    /// The WebSocket sessions here, live and lingering.
    pub(super) members: HashSet<PeerId>,
    /// Who came and went since the last announcement to the members.
    pub(super) changes: Changes,
}

impl Place {
    /// Whether nobody is here any more, so the place can be forgotten.
    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.names.is_empty()
    }
}
