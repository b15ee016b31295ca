//! What the signaling server says, taken into the session: a welcome (the list, the ids,
//! the ICE servers), a refusal, presence batches, relayed signals and the connection's trouble.

use ferry_protocol::Place;
use leptos::prelude::*;

use super::words::{self, refusal};
use super::{NICK_KEY, Phase, Session};
use crate::web::prefs;
use crate::web::signaling::SignalingEvent;

impl Session {
    /// Takes in what the server says: a welcome, a refusal, presence, signals and the
    /// connection's trouble.
    pub(super) fn on_signaling(self, typed: &str, event: SignalingEvent) {
        let state = self.state;
        let engine = self.engine.get_value();
        match event {
            SignalingEvent::Welcome {
                id,
                nick,
                users,
                ice_servers,
                relay_only,
                room,
            } => {
                self.arrived(room);
                state.relay_offered.set(
                    ice_servers
                        .iter()
                        .flat_map(|server| &server.urls)
                        .any(|url| url.starts_with("turn:") || url.starts_with("turns:")),
                );
                state.relay_forced.set(relay_only);
                engine.set_identity(id.clone(), nick.as_str(), ice_servers, relay_only);
                self.roster.update_value(|roster| {
                    roster.welcome(id, users);
                });
                let users = self.roster.with_value(|roster| roster.users().to_vec());
                for user in &users {
                    engine.set_nick(&user.id, user.nick.as_str());
                }
                // After a server restart everyone has a new id: keep the selection by nick.
                let selected_nick = state.selected.with_untracked(|selected| {
                    let users = state.users.get_untracked();
                    selected.as_ref().and_then(|id| {
                        users
                            .into_iter()
                            .find(|user| &user.id == id)
                            .map(|user| user.nick)
                    })
                });
                let reselected = selected_nick.and_then(|wanted| {
                    users
                        .iter()
                        .find(|user| user.nick == wanted)
                        .map(|user| user.id.clone())
                });
                state.users.set(users);
                self.refresh_standing();
                state.selected.set(reselected);
                state.me.set(Some(nick.as_str().to_owned()));
                prefs::set_tab_text(NICK_KEY, nick.as_str());
                state.server_trouble.set(None);
                state.join_error.set(None);
                state.phase.set(Phase::Joined);
            }
            SignalingEvent::Refused { code, message } => {
                state.join_error.set(Some(refusal(code, &message, typed)));
                // A code that led nowhere is not tried again by the next join.
                self.place.update_value(|place| {
                    if matches!(place, Place::Code(_)) {
                        *place = Place::Lobby;
                    }
                });
                state.server_trouble.set(None);
                state.phase.set(Phase::Join);
                self.signaling.set_value(None);
            }
            SignalingEvent::PairCode {
                code,
                expires_in_secs,
            } => self.got_code(&code, expires_in_secs),
            SignalingEvent::Said(code, message) => self.refused_in_room(code, &message),
            SignalingEvent::IceServers(servers) => engine.set_ice_servers(servers),
            SignalingEvent::Lost => state.server_trouble.set(Some(words::CONNECTION_LOST)),
            SignalingEvent::Offline => state.server_trouble.set(Some(words::OFFLINE)),
            SignalingEvent::Restarting => state.server_trouble.set(Some(words::RESTARTING)),
            SignalingEvent::UsersChanged { joined, left, away } => {
                let change = self
                    .roster
                    .try_update_value(|roster| roster.changed(joined, &left, &away))
                    .unwrap_or_default();
                for user in &change.arrived {
                    engine.set_nick(&user.id, user.nick.as_str());
                }
                state
                    .users
                    .set(self.roster.with_value(|roster| roster.users().to_vec()));
                self.refresh_standing();
                if state
                    .selected
                    .get_untracked()
                    .is_some_and(|selected| left.contains(&selected) || away.contains(&selected))
                {
                    state.selected.set(None);
                }
                for id in &left {
                    engine.peer_left(id);
                }
                for id in &away {
                    engine.peer_unreachable(id);
                }
            }
            SignalingEvent::Signal {
                from,
                from_nick,
                payload,
                lane,
            } => engine.handle_signal(from, from_nick.as_str(), payload, lane),
        }
    }
}
