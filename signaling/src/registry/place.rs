//! One place people meet, the lobby (or one network's lobby) or one private room: its own
//! nick namespace, its members and its presence batches. Nobody outside it sees any of it.

use std::collections::HashSet;
use std::net::IpAddr;

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

impl PlaceKey {
    /// The place's name between instances and in Redis keys: `lobby`, `lobby:private`,
    /// `lobby:ADDRESS` or `room:ID`.
    pub(crate) fn wire(&self) -> String {
        match self {
            Self::Lobby(None) => "lobby".into(),
            Self::Lobby(Some(Network::Private)) => "lobby:private".into(),
            Self::Lobby(Some(Network::Public(ip))) => format!("lobby:{ip}"),
            Self::Room(room) => format!("room:{}", room.as_str()),
        }
    }

    /// The place [`Self::wire`] names; `None` for anything else.
    pub(crate) fn from_wire(name: &str) -> Option<Self> {
        match name.split_once(':') {
            None if name == "lobby" => Some(Self::Lobby(None)),
            Some(("lobby", "private")) => Some(Self::Lobby(Some(Network::Private))),
            Some(("lobby", ip)) => ip
                .parse::<IpAddr>()
                .ok()
                .map(|ip| Self::Lobby(Some(Network::Public(ip)))),
            Some(("room", id)) => RoomId::parse(id).ok().map(Self::Room),
            _ => None,
        }
    }
}

/// One place's nicks, members and unannounced changes. It exists while someone is in it:
/// the registry drops it with its last member.
#[derive(Debug, Default)]
pub(super) struct Place {
    /// Who holds each nick here, WebSocket sessions and (in a lobby) classic registrations.
    pub(super) names: Names,
    /// The WebSocket sessions here, live and lingering.
    pub(super) members: HashSet<PeerId>,
    /// The sessions other instances of the service hold here.
    pub(super) remote: HashSet<PeerId>,
    /// Who came and went since the last announcement to the members.
    pub(super) changes: Changes,
}

impl Place {
    /// Whether nobody is here any more, so the place can be forgotten.
    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.remote.is_empty() && self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_place_is_named_and_read_back() {
        let places = [
            PlaceKey::Lobby(None),
            PlaceKey::Lobby(Some(Network::Private)),
            PlaceKey::Lobby(Some(Network::Public("203.0.113.7".parse().unwrap()))),
            PlaceKey::Lobby(Some(Network::Public("2001:db8::".parse().unwrap()))),
            PlaceKey::Room(RoomId::from_random_bytes([7; 16])),
        ];
        for place in places {
            assert_eq!(PlaceKey::from_wire(&place.wire()), Some(place));
        }
        for junk in ["", "lobby:", "lobby:nowhere", "room:", "room:xyz", "hall"] {
            assert_eq!(PlaceKey::from_wire(junk), None, "{junk}");
        }
    }
}
