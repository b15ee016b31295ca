//! Who is online where: WebSocket sessions in places (the lobby, or one network's lobby, and
//! private rooms), classic HTTP registrations in the lobby, their presence, pairing codes, and
//! the outbound queues the server writes to.
//!
//! Every operation is one method called under the server's single lock, so a join and the
//! welcome it sends happen as one step. Arrivals and departures are gathered and announced in
//! batches per place ([`crate::changes::Changes`]); a welcome lists everyone in its place as of the last
//! announcement there, and the next announcement brings the rest, so no client can miss a
//! change or see one out of order.
//!
//! A place is its own world: nicks are unique within it, held by what they look like
//! ([`crate::lookalike::keys`]) so a lookalike of a held nick is taken whichever kind of user
//! holds it; its members see only each other; a signal goes only to someone in the same
//! place. A place exists while someone is in it, so a room's state goes with its last member.

mod connection;
mod http;
mod joining;
#[cfg(test)]
mod model;
mod names;
mod place;
mod remote;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use ferry_protocol::{
    ErrorCode, LobbyScope, Nick, PeerId, ServerMessage, SessionToken, SignalPayload, UserInfo, Wire,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub(crate) use self::connection::{ConnId, Connection, Kick};
pub use self::http::HttpLimits;
pub(crate) use self::http::HttpRefusal;
pub(crate) use self::joining::Target;
pub(crate) use self::joining::{no_room_for_codes, pairing_refused, taken, too_many_sessions};
use self::place::Place as Gathering;
pub(crate) use self::place::PlaceKey;
pub(crate) use self::remote::Listed;
use crate::Limits;
use crate::address::PerPlace;
use crate::cluster::{Outbox, Outgoing};
use crate::ice::IceConfig;
use crate::inbound::Busy;
use crate::outbound::Outbound;
use crate::pairing::Pairing;
use crate::presence::Presence;

/// A refused request: the error code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

/// The id and token a fresh session gets, drawn by the caller from a secure random source.
#[derive(Debug)]
pub(crate) struct Fresh {
    pub(crate) id: PeerId,
    pub(crate) token: SessionToken,
    /// Whether the store holds the nick's claim for this token: a nick that another
    /// instance's session seemed to hold is then this session's (that one went away unseen).
    pub(crate) claimed: bool,
}

/// Everyone online and everything needed to tell them about each other.
#[derive(Debug)]
pub(crate) struct Registry {
    ice: IceConfig,
    heartbeat_secs: u64,
    sessions: HashMap<PeerId, Session>,
    /// Every place someone is in.
    places: HashMap<PlaceKey, Gathering>,
    /// The places with changes to announce.
    changed: HashSet<PlaceKey>,
    /// Who meets in the lobby.
    lobby: LobbyScope,
    /// How many sessions a private room takes.
    room_size: usize,
    pairing: Pairing,
    ws_presence: Presence<PeerId>,
    http: http::Registrations,
    /// Sessions, live and lingering, per place they come from.
    per_place: PerPlace,
    /// Sessions whose connection is gone and that are still listed, since when.
    lingering: HashMap<PeerId, Instant>,
    /// How long a lingering session stays listed to others.
    linger_grace: Duration,
    /// The sessions other instances of the service hold.
    remote: HashMap<PeerId, remote::Remote>,
    /// Where news for the store and the other instances goes, once the server runs.
    out: Option<Outbox>,
}

/// One WebSocket user's session; it outlives an abnormally dropped socket until it expires.
#[derive(Debug)]
struct Session {
    nick: Nick,
    token: SessionToken,
    place: PlaceKey,
    /// `None` while the socket is gone and the session waits to be reclaimed or to expire.
    conn: Option<Connection>,
    /// Where its last connection came from.
    from: Option<IpAddr>,
    /// Whether others see it: a lingering session is unlisted after a grace, and listed again
    /// when it is reclaimed.
    listed: bool,
    /// What it holds in the shared store, made once at its join: refreshing every session's
    /// claim several times a minute must not work out lookalike keys under the lock each time.
    /// It counts against the address the session joined from, wherever it moves.
    claim: crate::store::Claim,
}

/// What holds a nick.
#[derive(Debug)]
enum Holder {
    /// A WebSocket session.
    Ws(PeerId),
    /// A classic HTTP registration.
    Http(http::Registration),
    /// A session another instance holds.
    Remote(PeerId),
}

impl Session {
    /// What the session holds in the shared store: its nick in its place, and a place among
    /// its address's sessions.
    fn claim(&self) -> crate::store::Claim {
        self.claim.clone()
    }
}

/// The claim of `nick` in `place` for the session with `token`, from `from`, whose address
/// may have `per_address` sessions.
pub(crate) fn claim_of(
    place: &PlaceKey,
    nick: &Nick,
    token: &SessionToken,
    from: Option<IpAddr>,
    per_address: usize,
) -> crate::store::Claim {
    let claim = crate::store::Claim::new(&place.wire(), nick.as_str(), token);
    match from {
        Some(ip) => claim.limited(format!("ws:{}", crate::address::place(ip)), per_address),
        None => claim,
    }
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl Registry {
    /// An empty registry whose users stay online for `ttl` after their last sign of life,
    /// whose welcomes carry the ICE servers of `ice` and `heartbeat_secs`, whose lobby is
    /// `lobby`, and which keeps `limits` (sessions per address, the lingering grace, classic
    /// registrations, room sizes and pairing).
    pub(crate) fn new(
        ttl: Duration,
        ice: IceConfig,
        heartbeat_secs: u64,
        lobby: LobbyScope,
        limits: &Limits,
    ) -> Self {
        Self {
            ice,
            heartbeat_secs,
            sessions: HashMap::new(),
            places: HashMap::new(),
            changed: HashSet::new(),
            lobby,
            room_size: limits.room_size,
            pairing: Pairing::new(limits.pairing),
            ws_presence: Presence::new(ttl),
            http: http::Registrations::new(ttl, limits.http_registrations),
            per_place: PerPlace::new(limits.max_sessions_per_ip),
            lingering: HashMap::new(),
            linger_grace: limits.linger_grace,
            remote: HashMap::new(),
            out: None,
        }
    }

    /// Sends news for the store and the other instances to `outbox` from now on.
    pub(crate) fn connect(&mut self, outbox: Outbox) {
        self.out = Some(outbox);
    }

    /// Records a sign of life from `id` on connection `conn`.
    pub(crate) fn touch(&mut self, id: &PeerId, conn: ConnId, now: Instant) {
        if self.is_current(id, conn) {
            self.ws_presence.touch(id.clone(), now);
        }
    }

    /// Delivers `payload` for peer connection `lane` to `to` only, stamped with the sender's
    /// id and nick.
    ///
    /// A signal past what the addressee takes from this sender, or from everyone
    /// ([`crate::inbound`]), is refused to the sender; the addressee never pays for it.
    pub(crate) fn relay(
        &mut self,
        from: &PeerId,
        to: &PeerId,
        payload: SignalPayload,
        lane: u32,
        now: Instant,
    ) -> Result<(), Refusal> {
        let Some(sender) = self.sessions.get(from) else {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                "your session has ended; join again",
            ));
        };
        let place = sender.place.clone();
        let from_nick = sender.nick.clone();
        if !self.sessions.contains_key(to)
            && let Some(instance) = self.remote_instance_of(to, &place)
        {
            self.send_out(Outgoing::Signal {
                instance,
                message: ferry_protocol::ClusterMessage::Signal {
                    from: from.clone(),
                    from_nick,
                    place: place.wire(),
                    to: to.clone(),
                    payload,
                    lane,
                },
            });
            return Ok(());
        }
        let message = ServerMessage::Signal {
            from: from.clone(),
            from_nick,
            payload,
            lane,
        };
        // Someone in another place is as unknown as someone absent: the answer must not tell
        // who is online elsewhere.
        let Some(conn) = self
            .sessions
            .get_mut(to)
            .filter(|session| session.place == place)
            .and_then(|session| session.conn.as_mut())
        else {
            return Err(Refusal::new(
                ErrorCode::UnknownPeer,
                "nobody with that id is online here",
            ));
        };
        match conn.relay(from, encode(&message), now) {
            Ok(()) => {
                tracing::trace!(%from, %to, "relayed a signal");
                Ok(())
            }
            Err(busy) => Err(Refusal::new(
                ErrorCode::PeerBusy,
                match busy {
                    Busy::Sender => {
                        "you have sent them more than they can take in; this signal \
                                     was dropped"
                    }
                    Busy::Reader => {
                        "they have more waiting than they can take in; this signal \
                                     was dropped"
                    }
                },
            )),
        }
    }

    /// Ends `id`'s session at once, if connection `conn` still holds it.
    pub(crate) fn leave(&mut self, id: &PeerId, conn: ConnId) {
        if self.is_current(id, conn) {
            self.remove_session(id);
            tracing::debug!(%id, "left");
        }
    }

    /// Keeps `id`'s session, without its socket, until it is reclaimed or expires, if
    /// connection `conn` still holds it. The time-to-live counts from now.
    pub(crate) fn linger(&mut self, id: &PeerId, conn: ConnId, now: Instant) {
        if !self.is_current(id, conn) {
            return;
        }
        if let Some(session) = self.sessions.get_mut(id) {
            session.conn = None;
            if session.listed {
                self.lingering.insert(id.clone(), now);
            }
        }
        self.ws_presence.touch(id.clone(), now);
        tracing::debug!(%id, "connection lost; keeping the session for a reconnect");
    }

    /// Ends every session and registration whose time-to-live ran out at `now`.
    pub(crate) fn sweep(&mut self, now: Instant) {
        for id in self.ws_presence.expire(now) {
            if let Some(mut conn) = self.remove_session(&id) {
                conn.kick(Kick::Expired);
            }
            tracing::debug!(%id, "expired");
        }
        self.unlist_lingering(now);
        for (place, key) in self.http.expire(now) {
            let held = self
                .places
                .get(&place)
                .and_then(|gathering| gathering.names.get(&key));
            if matches!(held, Some(Holder::Http(_))) {
                self.remove_http(&place, &key);
            }
        }
        self.pairing.expire(now);
    }

    /// Announces who came and went in each place since the last announcement, to every live
    /// connection there, in one message encoded once per place.
    pub(crate) fn announce(&mut self) {
        for key in std::mem::take(&mut self.changed) {
            let Some(place) = self.places.get_mut(&key) else {
                continue;
            };
            let everyone = users(&self.sessions, &self.remote, place);
            let Some(message) = place.changes.announce(&everyone) else {
                continue;
            };
            let text = encode(&message);
            for id in &place.members {
                if let Some(conn) = self.sessions.get_mut(id).and_then(|s| s.conn.as_mut()) {
                    conn.deliver(Outbound::Text(text.clone()));
                }
            }
        }
    }

    /// Unlists the sessions that have lingered longer than the grace at `now`: to others they
    /// are away, and they can still be reclaimed until they expire.
    fn unlist_lingering(&mut self, now: Instant) {
        let grace = self.linger_grace;
        let mut due = Vec::new();
        self.lingering.retain(|id, since| {
            let waiting = now.saturating_duration_since(*since) < grace;
            if !waiting {
                due.push(id.clone());
            }
            waiting
        });
        for id in due {
            if let Some(session) = self.sessions.get_mut(&id)
                && session.conn.is_none()
                && session.listed
            {
                session.listed = false;
                if let Some(place) = self.places.get_mut(&session.place) {
                    place.changes.away(&id);
                    self.changed.insert(session.place.clone());
                }
                self.tell(|instance| ferry_protocol::ClusterMessage::Away {
                    instance: instance.to_owned(),
                    id: id.clone(),
                });
                tracing::debug!(%id, "away: unlisted after lingering");
            }
        }
    }

    /// Everyone listed in place `key` now, as the next announcement will have them.
    #[cfg(test)]
    fn listed(&self, key: &PlaceKey) -> Vec<UserInfo> {
        self.places
            .get(key)
            .map_or_else(Vec::new, |place| users(&self.sessions, &self.remote, place))
    }

    fn is_current(&self, id: &PeerId, conn: ConnId) -> bool {
        self.sessions
            .get(id)
            .and_then(|session| session.conn.as_ref())
            .is_some_and(|current| current.id == conn)
    }

    /// Removes a session, frees its nick and gathers its departure; returns its connection.
    fn remove_session(&mut self, id: &PeerId) -> Option<Connection> {
        let session = self.sessions.remove(id)?;
        self.send_out(Outgoing::Release(session.claim()));
        self.tell(|instance| ferry_protocol::ClusterMessage::Left {
            instance: instance.to_owned(),
            id: id.clone(),
        });
        if let Some(place) = self.places.get_mut(&session.place) {
            place.names.free_if(
                session.nick.as_str(),
                |holder| matches!(holder, Holder::Ws(holder) if holder == id),
            );
            place.members.remove(id);
            // An unlisted session was announced as away when it was unlisted.
            if session.listed {
                place.changes.left(id);
                self.changed.insert(session.place.clone());
            }
        }
        self.drop_if_empty(&session.place);
        self.ws_presence.remove(id);
        self.lingering.remove(id);
        self.pairing.forget(id);
        if self.out.is_some() {
            self.send_out(Outgoing::ForgetCode(id.clone()));
        }
        if let Some(from) = session.from {
            self.per_place.remove(from);
        }
        session.conn
    }

    /// Forgets place `key` once nobody is in it: an empty room leaves nothing behind.
    fn drop_if_empty(&mut self, key: &PlaceKey) {
        if self.places.get(key).is_some_and(Gathering::is_empty) {
            self.places.remove(key);
            self.changed.remove(key);
        }
    }
}

/// Every listed WebSocket user in `place` (lingering ones within their grace included, and
/// those other instances hold), sorted by nick. HTTP registrations are left out on purpose:
/// they cannot do WebRTC with Ferry, so listing them in the app would only offer transfers
/// that fail.
fn users(
    sessions: &HashMap<PeerId, Session>,
    remote: &HashMap<PeerId, remote::Remote>,
    place: &Gathering,
) -> Vec<UserInfo> {
    let mut users: Vec<UserInfo> = place
        .members
        .iter()
        .filter_map(|id| {
            let session = sessions.get(id).filter(|session| session.listed)?;
            Some(UserInfo {
                id: id.clone(),
                nick: session.nick.clone(),
            })
        })
        .chain(remote::remote_users(remote, &place.remote))
        .collect();
    users.sort_by_cached_key(|user| user.nick.key());
    users
}

/// Encodes a message once for all its recipients.
pub(crate) fn encode(message: &ServerMessage) -> Utf8Bytes {
    message.to_json().into()
}
