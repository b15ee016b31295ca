//! The sessions other instances of the service hold, as this instance knows them from what
//! they publish ([`crate::cluster`]): listed in their places beside the local sessions, their
//! nicks held, signals to them handed on to their instance, and signals from them delivered
//! here. An instance that stops refreshing its liveness takes its sessions with it.

use std::collections::{HashMap, HashSet};

use ferry_protocol::{ClusterMessage, Nick, PeerId, ServerMessage, UserInfo};
use tokio::time::Instant;

use super::{Holder, PlaceKey, Registry, encode};
use crate::cluster::Outgoing;
use crate::store::Claim;

/// A session another instance holds.
#[derive(Debug)]
pub(super) struct Remote {
    pub(super) instance: String,
    pub(super) nick: Nick,
    pub(super) place: PlaceKey,
    /// Whether it is listed: an away session is known but not shown, and takes no signals.
    pub(super) listed: bool,
}

/// One listed session of another instance, as a snapshot of the service has it.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) instance: String,
    pub(crate) place: PlaceKey,
    pub(crate) id: PeerId,
    pub(crate) nick: Nick,
}

impl Registry {
    /// Another instance's session `id` is listed as `nick` in `place`.
    pub(crate) fn remote_listed(&mut self, listed: Listed) {
        let Listed {
            instance,
            place,
            id,
            nick,
        } = listed;
        if self.sessions.contains_key(&id) {
            return;
        }
        if let Some(known) = self.remote.get_mut(&id) {
            if known.listed || known.place != place {
                return;
            }
            known.listed = true;
        } else {
            let gathering = self.places.entry(place.clone()).or_default();
            // Its instance won the nick's claim, so it is free here unless a session that
            // held it went away unseen: then the newer holder is the one listed.
            gathering
                .names
                .free_if(nick.as_str(), |holder| matches!(holder, Holder::Remote(_)));
            if gathering.names.find(nick.as_str()).is_none() {
                gathering
                    .names
                    .hold(nick.as_str(), Holder::Remote(id.clone()));
            }
            gathering.remote.insert(id.clone());
            self.remote.insert(
                id.clone(),
                Remote {
                    instance,
                    nick: nick.clone(),
                    place: place.clone(),
                    listed: true,
                },
            );
        }
        if let Some(gathering) = self.places.get_mut(&place) {
            gathering.changes.joined(UserInfo { id, nick });
            self.changed.insert(place);
        }
    }

    /// Another instance's session `id` is away.
    pub(crate) fn remote_away(&mut self, id: &PeerId) {
        let Some(known) = self.remote.get_mut(id).filter(|known| known.listed) else {
            return;
        };
        known.listed = false;
        if let Some(place) = self.places.get_mut(&known.place) {
            place.changes.away(id);
            self.changed.insert(known.place.clone());
        }
    }

    /// Another instance's session `id` left.
    pub(crate) fn remote_left(&mut self, id: &PeerId) {
        let Some(known) = self.remote.remove(id) else {
            return;
        };
        if let Some(place) = self.places.get_mut(&known.place) {
            place.names.free_if(
                known.nick.as_str(),
                |holder| matches!(holder, Holder::Remote(holder) if holder == id),
            );
            place.remote.remove(id);
            if known.listed {
                place.changes.left(id);
                self.changed.insert(known.place.clone());
            }
        }
        self.drop_if_empty(&known.place);
    }

    /// Forgets every session of `instance`, which stopped refreshing its liveness.
    pub(crate) fn drop_instance(&mut self, instance: &str) {
        let gone: Vec<PeerId> = self
            .remote
            .iter()
            .filter(|(_, known)| known.instance == instance)
            .map(|(id, _)| id.clone())
            .collect();
        if !gone.is_empty() {
            tracing::info!(instance, sessions = gone.len(), "an instance is gone");
        }
        for id in gone {
            self.remote_left(&id);
        }
    }

    /// Makes the other instances' sessions what a fresh `snapshot` of the service says, after
    /// this instance could not hear them for a while.
    pub(crate) fn reconcile(&mut self, snapshot: Vec<Listed>) {
        let seen: HashSet<PeerId> = snapshot.iter().map(|listed| listed.id.clone()).collect();
        let stale: Vec<PeerId> = self
            .remote
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in stale {
            self.remote_left(&id);
        }
        for listed in snapshot {
            self.remote_listed(listed);
        }
    }

    /// The instances whose sessions this one lists.
    pub(crate) fn remote_instances(&self) -> HashSet<String> {
        self.remote
            .values()
            .map(|known| known.instance.clone())
            .collect()
    }

    /// Delivers `message`, a signal another instance handed on from `from` in `place`, to this
    /// instance's session `to`, if it is there and still in that place. What it cannot take
    /// in is dropped, as a local sender's would be.
    pub(crate) fn deliver_remote(
        &mut self,
        from: &PeerId,
        place: &PlaceKey,
        to: &PeerId,
        message: &ServerMessage,
        now: Instant,
    ) {
        let Some(conn) = self
            .sessions
            .get_mut(to)
            .filter(|session| &session.place == place)
            .and_then(|session| session.conn.as_mut())
        else {
            return;
        };
        if conn.relay(from, encode(message), now).is_err() {
            tracing::debug!(%from, %to, "dropped a signal from another instance: the addressee is busy");
        }
    }

    /// The signal for `to`, if another instance holds them in `place` and they are listed:
    /// the instance to hand it to.
    pub(super) fn remote_instance_of(&self, to: &PeerId, place: &PlaceKey) -> Option<String> {
        self.remote
            .get(to)
            .filter(|known| known.listed && &known.place == place)
            .map(|known| known.instance.clone())
    }

    /// Queues the instance's listing and claims to be written anew, in order with the news
    /// queued before and after (see [`Outgoing::Restore`]).
    pub(crate) fn restore(&self) {
        let Some(out) = &self.out else {
            return;
        };
        let listed = self
            .sessions
            .iter()
            .filter(|(_, session)| session.listed)
            .map(|(id, session)| ClusterMessage::Listed {
                instance: out.instance.clone(),
                place: session.place.wire(),
                id: id.clone(),
                nick: session.nick.clone(),
            })
            .collect();
        self.send_out(Outgoing::Restore {
            listed,
            claims: self.claims(),
        });
    }

    /// Every local session's nick claim, for the store to keep holding them.
    pub(crate) fn claims(&self) -> Vec<Claim> {
        self.sessions.values().map(super::Session::claim).collect()
    }

    /// Tells the rest of the service, when there is a rest (the instance shares Redis with
    /// others): presence news goes only to other instances.
    pub(super) fn tell(&self, message: impl FnOnce(&str) -> ClusterMessage) {
        if let Some(out) = self.out.as_ref() {
            let _ = out.tx.send(Outgoing::Presence(message(&out.instance)));
        }
    }

    /// Queues `outgoing` for the cluster's worker, if the registry has one.
    pub(super) fn send_out(&self, outgoing: Outgoing) {
        if let Some(out) = &self.out {
            let _ = out.tx.send(outgoing);
        }
    }
}

/// The remote sessions among `members`, listed, as users.
pub(super) fn remote_users<'a>(
    remote: &'a HashMap<PeerId, Remote>,
    members: &'a HashSet<PeerId>,
) -> impl Iterator<Item = UserInfo> + 'a {
    members.iter().filter_map(|id| {
        let known = remote.get(id).filter(|known| known.listed)?;
        Some(UserInfo {
            id: id.clone(),
            nick: known.nick.clone(),
        })
    })
}
