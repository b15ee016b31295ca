//! Presence in batches: who came and went since the last announcement, gathered and sent to
//! everyone as one `users_changed`, and the user list that welcomes carry, encoded once per
//! announcement instead of once per welcome.
//!
//! A crowd joining at once would otherwise cost every client one message per arrival, and
//! every welcome a fresh encoding of the whole list: O(users²) work and queued messages while
//! the server is busiest. Batched, a client gets one message per batch, and every welcome of a
//! batch shares one encoded list (sent without copying it, see
//! [`crate::outbound::Outbound::Parts`]).
//!
//! A welcome lists everyone as of the last announcement; the next announcement brings what
//! changed since, so a new client learns of everyone exactly as the others do.

use ferry_protocol::{PeerId, ServerMessage, UserInfo};
use tokio_tungstenite::tungstenite::Bytes;

/// The changes since the last announcement and the list as of it.
#[derive(Debug)]
pub(crate) struct Changes {
    joined: Vec<UserInfo>,
    left: Vec<PeerId>,
    away: Vec<PeerId>,
    /// Everyone online at the last announcement, as a JSON array.
    listed: Bytes,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            joined: Vec::new(),
            left: Vec::new(),
            away: Vec::new(),
            listed: Bytes::from_static(b"[]"),
        }
    }
}

impl Changes {
    /// `user` came online.
    pub(crate) fn joined(&mut self, user: UserInfo) {
        self.joined.push(user);
    }

    /// `id` left. Someone who came and went between two announcements was never announced,
    /// so nobody needs to hear of them at all.
    pub(crate) fn left(&mut self, id: &PeerId) {
        if let Some(at) = self.joined.iter().position(|user| &user.id == id) {
            self.joined.remove(at);
        } else {
            self.left.push(id.clone());
        }
    }

    /// `id` went away: its connection dropped a while ago, and it may come back. As with a
    /// departure, someone never announced is never announced.
    pub(crate) fn away(&mut self, id: &PeerId) {
        if let Some(at) = self.joined.iter().position(|user| &user.id == id) {
            self.joined.remove(at);
        } else {
            self.away.push(id.clone());
        }
    }

    /// Whether anything changed since the last announcement.
    pub(crate) fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && self.away.is_empty()
    }

    /// Takes what changed as one announcement, and lists `everyone` (online now, sorted as
    /// welcomes show them) for the welcomes until the next one. `None` when nothing changed.
    pub(crate) fn announce(&mut self, everyone: &[UserInfo]) -> Option<ServerMessage> {
        if self.is_empty() {
            return None;
        }
        // A list of plain strings and ids always serializes.
        self.listed = serde_json::to_vec(everyone)
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from_static(b"[]"));
        Some(ServerMessage::UsersChanged {
            joined: std::mem::take(&mut self.joined),
            left: std::mem::take(&mut self.left),
            away: std::mem::take(&mut self.away),
        })
    }

    /// Everyone online at the last announcement, as the JSON array a welcome carries.
    pub(crate) fn listed(&self) -> Bytes {
        self.listed.clone()
    }
}

#[cfg(test)]
mod tests {
    use ferry_protocol::Nick;

    use super::*;

    fn user(byte: u8, nick: &str) -> UserInfo {
        UserInfo {
            id: PeerId::from_random_bytes([byte; PeerId::BYTES]),
            nick: Nick::new(nick).unwrap(),
        }
    }

    #[test]
    fn changes_go_out_together_and_the_list_follows_them() {
        let mut changes = Changes::default();
        assert_eq!(changes.listed().as_ref(), b"[]");
        assert_eq!(changes.announce(&[]), None);
        let (ana, bo) = (user(1, "ana"), user(2, "bo"));
        changes.joined(ana.clone());
        changes.joined(bo.clone());
        // Until the announcement, welcomes list what was announced before.
        assert_eq!(changes.listed().as_ref(), b"[]");
        let everyone = [ana.clone(), bo.clone()];
        assert_eq!(
            changes.announce(&everyone),
            Some(ServerMessage::UsersChanged {
                joined: everyone.to_vec(),
                left: Vec::new(),
                away: Vec::new(),
            })
        );
        let listed: Vec<UserInfo> = serde_json::from_slice(&changes.listed()).unwrap();
        assert_eq!(listed, everyone);
        changes.left(&ana.id);
        assert_eq!(
            changes.announce(&[bo]),
            Some(ServerMessage::UsersChanged {
                joined: Vec::new(),
                left: vec![ana.id],
                away: Vec::new(),
            })
        );
    }

    #[test]
    fn someone_who_came_and_went_unannounced_is_never_announced() {
        let mut changes = Changes::default();
        let cy = user(3, "cy");
        changes.joined(cy.clone());
        changes.left(&cy.id);
        assert!(changes.is_empty());
        assert_eq!(changes.announce(&[]), None);
    }
}
