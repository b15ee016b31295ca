//! The session's ways between places: where the page is (the lobby, or the room its address
//! names), a new room, a pairing code made or typed, leaving a room, and what the server
//! answers about them.

use std::time::Duration;

use ferry_protocol::{ErrorCode, PairCode, Place, RoomId, Roster};
use leptos::prelude::*;

use super::{Phase, Session, sentence, words};
use crate::core::backoff::Backoff;
use crate::web::address::{room_link, server_info, show_room};
use crate::web::{JsError, back_off, log, random_bytes};

impl Session {
    /// Asks the server about its lobby, so the join screen offers what it has; while the
    /// server cannot be reached (this device is offline, or the page came from the service
    /// worker's copy), says so and asks again.
    pub fn learn_lobby(self) {
        leptos::task::spawn_local(async move {
            let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
            loop {
                match server_info().await {
                    Ok(info) => {
                        if let Some(info) = info {
                            self.state.lobby.set(info.lobby);
                        }
                        if self.state.server_trouble.get_untracked() == Some(words::OFFLINE) {
                            self.state.server_trouble.set(None);
                        }
                        return;
                    }
                    Err(error) => {
                        log(&error.to_string());
                        if self.state.phase.get_untracked() != Phase::Joined {
                            self.state.server_trouble.set(Some(words::OFFLINE));
                        }
                        back_off(&mut backoff).await;
                    }
                }
            }
        });
    }

    /// Whether the next join goes into a private room named by the page's address.
    pub fn joining_a_room(self) -> bool {
        self.place
            .with_value(|place| matches!(place, Place::Room(_)))
    }

    /// Joins as `nick` (or, joined already, moves) into a new private room of 128 random
    /// bits, whose link is then shown to share; with `pair`, asks for a pairing code into it
    /// as soon as it is in.
    pub fn new_room(self, nick: String, pair: bool) {
        let room = RoomId::from_random_bytes(random_bytes());
        self.pair_when_in.set_value(pair);
        self.go_to(nick, Place::Room(room));
    }

    /// Asks for a pairing code into this room, or into a new room when in the lobby.
    pub fn pair(self) {
        let in_room = self.joining_a_room();
        if in_room {
            self.state.room_error.set(None);
            self.signaling.with_value(|client| {
                if let Some(client) = client {
                    client.make_code();
                }
            });
        } else if let Some(nick) = self.state.me.get_untracked() {
            self.new_room(nick, true);
        }
    }

    /// Joins as `nick` (or, joined already, moves) into the room that the pairing code
    /// `typed` leads to; a code of the wrong shape is refused here, with a sentence.
    pub fn enter_code(self, nick: String, typed: &str) {
        match PairCode::parse(typed) {
            Ok(code) => self.go_to(nick, Place::Code(code)),
            Err(error) => {
                let message = sentence(&error.to_string());
                if self.state.phase.get_untracked() == Phase::Joined {
                    self.state.room_error.set(Some(message));
                } else {
                    self.state.join_error.set(Some(message));
                }
            }
        }
    }

    /// Copies `text` (the room's link) to the clipboard.
    ///
    /// # Errors
    /// When the browser does not let the page write to the clipboard.
    pub async fn copy(self, text: &str) -> Result<(), JsError> {
        crate::web::address::copy(text).await
    }

    /// Leaves the private room for the lobby.
    pub fn leave_room(self) {
        if let Some(nick) = self.state.me.get_untracked() {
            self.go_to(nick, Place::Lobby);
        }
    }

    /// Says goodbye where the page is, if it is anywhere, and joins as `nick` in `place`.
    /// Transfers under way go on: their bytes never passed through the server.
    fn go_to(self, nick: String, place: Place) {
        self.signaling.with_value(|client| {
            if let Some(client) = client {
                client.leave();
            }
        });
        self.signaling.set_value(None);
        let room = match &place {
            Place::Room(room) => Some(room.clone()),
            Place::Lobby | Place::Code(_) => None,
        };
        show_room(room.as_ref());
        self.state.room_link.set(room.as_ref().map(room_link));
        self.roster.set_value(Roster::new());
        self.state.users.set(Vec::new());
        self.state.selected.set(None);
        self.place.set_value(place);
        self.join(nick);
    }

    /// Welcomed, by a pairing code into `room` or anyhow: the room goes into the address (so
    /// a reload comes back), and a code asked for on the way is asked for now.
    pub(super) fn arrived(self, room: Option<RoomId>) {
        if let Some(room) = room {
            show_room(Some(&room));
            self.state.room_link.set(Some(room_link(&room)));
            self.place.set_value(Place::Room(room));
        }
        if self.pair_when_in.get_value() {
            self.pair_when_in.set_value(false);
            self.signaling.with_value(|client| {
                if let Some(client) = client {
                    client.make_code();
                }
            });
        }
    }

    /// Shows the pairing code `code`, good for `expires_in_secs`.
    pub(super) fn got_code(self, code: &PairCode, expires_in_secs: u64) {
        self.state.room_error.set(None);
        self.state
            .pair_code
            .set(Some((code.grouped(), expires_in_secs.div_ceil(60))));
    }

    /// Says why the server refused a request made in a room, when it was one about the room.
    pub(super) fn refused_in_room(self, code: ErrorCode, message: &str) {
        if code == ErrorCode::NoCode {
            self.state.room_error.set(Some(sentence(message)));
        }
    }
}
