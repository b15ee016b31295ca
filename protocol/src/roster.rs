//! What a client makes of the server's presence messages: the list of the other people
//! online, kept from a welcome and the `users_changed` batches after it.
//!
//! This is the meaning of those messages, written once for every client (the app, a native
//! peer, the server's own model tests): a welcome lists everyone as of the server's last
//! announcement and replaces whatever was known; each batch takes its departures off and puts
//! its arrivals on. The client itself is never listed.

use crate::{PeerId, UserInfo};

/// The other people online, as one client knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    me: Option<PeerId>,
    users: Vec<UserInfo>,
}

/// What a presence message changed in a [`Roster`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterChange {
    /// People listed now who were not before, in the order the server gave them.
    pub arrived: Vec<UserInfo>,
    /// People listed before who are not now.
    pub departed: Vec<PeerId>,
}

impl Roster {
    /// Nobody known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a welcome: this client is `me` now, and the others are `users` (the welcome's
    /// list, which after a reconnect holds this client too).
    pub fn welcome(&mut self, me: PeerId, users: Vec<UserInfo>) -> RosterChange {
        let users: Vec<UserInfo> = users.into_iter().filter(|user| user.id != me).collect();
        let departed = self
            .users
            .iter()
            .filter(|old| users.iter().all(|user| user.id != old.id))
            .map(|old| old.id.clone())
            .collect();
        let arrived = users
            .iter()
            .filter(|user| !self.lists(&user.id))
            .cloned()
            .collect();
        self.me = Some(me);
        self.users = users;
        RosterChange { arrived, departed }
    }

    /// Takes a `users_changed` batch: `left` and `away` go, then `joined` come (everyone hears
    /// of each arrival, the newcomer too, so this client is left out of them).
    pub fn changed(
        &mut self,
        joined: Vec<UserInfo>,
        left: &[PeerId],
        away: &[PeerId],
    ) -> RosterChange {
        let gone = |id: &PeerId| left.contains(id) || away.contains(id);
        let departed: Vec<PeerId> = self
            .users
            .iter()
            .filter(|user| gone(&user.id))
            .map(|user| user.id.clone())
            .collect();
        self.users.retain(|user| !gone(&user.id));
        let mut arrived = Vec::new();
        for user in joined {
            if self.me.as_ref() == Some(&user.id) {
                continue;
            }
            match self.users.iter_mut().find(|known| known.id == user.id) {
                // A repeated arrival changes nothing but, if it differs, how they are called.
                Some(known) => known.nick = user.nick,
                None => {
                    self.users.push(user.clone());
                    arrived.push(user);
                }
            }
        }
        RosterChange { arrived, departed }
    }

    /// Everyone else online, in the order they were listed.
    pub fn users(&self) -> &[UserInfo] {
        &self.users
    }

    /// Whether `id` is listed.
    pub fn lists(&self, id: &PeerId) -> bool {
        self.users.iter().any(|user| &user.id == id)
    }

    /// This client's id, once welcomed.
    pub fn me(&self) -> Option<&PeerId> {
        self.me.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Nick;

    fn user(byte: u8, nick: &str) -> UserInfo {
        UserInfo {
            id: PeerId::from_random_bytes([byte; PeerId::BYTES]),
            nick: Nick::new(nick).unwrap(),
        }
    }

    fn nicks(users: &[UserInfo]) -> Vec<&str> {
        users.iter().map(|user| user.nick.as_str()).collect()
    }

    #[test]
    fn a_welcome_lists_the_others_and_replaces_what_was_known() {
        let (me, ana, bo, cy) = (user(1, "me"), user(2, "ana"), user(3, "bo"), user(4, "cy"));
        let mut roster = Roster::new();
        let change = roster.welcome(me.id.clone(), vec![ana.clone(), me.clone(), bo.clone()]);
        assert_eq!(nicks(roster.users()), ["ana", "bo"]);
        assert_eq!(nicks(&change.arrived), ["ana", "bo"]);
        assert!(change.departed.is_empty());
        // A second welcome (a reconnect) says who is there now.
        let change = roster.welcome(me.id.clone(), vec![bo, cy]);
        assert_eq!(nicks(roster.users()), ["bo", "cy"]);
        assert_eq!(nicks(&change.arrived), ["cy"]);
        assert_eq!(change.departed, vec![ana.id]);
        assert_eq!(roster.me(), Some(&me.id));
    }

    #[test]
    fn a_batch_takes_departures_off_and_puts_arrivals_on() {
        let (me, ana, bo) = (user(1, "me"), user(2, "ana"), user(3, "bo"));
        let mut roster = Roster::new();
        roster.welcome(me.id.clone(), vec![ana.clone()]);
        let change = roster.changed(vec![me, bo.clone()], std::slice::from_ref(&ana.id), &[]);
        assert_eq!(nicks(roster.users()), ["bo"]);
        assert_eq!(nicks(&change.arrived), ["bo"]);
        assert_eq!(change.departed, vec![ana.id.clone()]);
        // Hearing again of someone known, or of a departure of someone unknown, is no news.
        let change = roster.changed(vec![bo], &[], &[ana.id]);
        assert_eq!(change, RosterChange::default());
        assert_eq!(nicks(roster.users()), ["bo"]);
    }

    #[test]
    fn someone_who_leaves_and_comes_back_in_one_batch_stays_listed() {
        let (me, ana) = (user(1, "me"), user(2, "ana"));
        let mut roster = Roster::new();
        roster.welcome(me.id, vec![ana.clone()]);
        let change = roster.changed(vec![ana.clone()], &[], std::slice::from_ref(&ana.id));
        assert_eq!(nicks(roster.users()), ["ana"]);
        assert_eq!(change.departed, vec![ana.id]);
        assert_eq!(nicks(&change.arrived), ["ana"]);
    }
}
