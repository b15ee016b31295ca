//! Who is online where: WebSocket sessions in places (the lobby, or one network's lobby, and
//! private rooms), classic HTTP registrations in the lobby, their presence, pairing codes, and
//! the outbound queues the server writes to.
//!
//! Every operation is one method called under the server's single lock, so a join and the
//! welcome it sends happen as one step. Arrivals and departures are gathered and announced in
//! batches per place ([`Changes`]); a welcome lists everyone in its place as of the last
//! announcement there, and the next announcement brings the rest, so no client can miss a
//! change or see one out of order.
//!
//! A place is its own world: nicks are unique within it, held by what they look like
//! ([`crate::lookalike::keys`]) so a lookalike of a held nick is taken whichever kind of user
//! holds it; its members see only each other; a signal goes only to someone in the same
//! place. A place exists while someone is in it, so a room's state goes with its last member.

mod connection;
mod http;
#[cfg(test)]
mod model;
mod names;
mod place;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ferry_protocol::{
    ErrorCode, LobbyScope, Nick, PairCode, PeerId, Place, RoomId, ServerMessage, SessionToken,
    SignalPayload, UserInfo, Wire,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

pub(crate) use self::connection::{ConnId, Connection, Kick};
pub use self::http::HttpLimits;
pub(crate) use self::http::HttpRefusal;
use self::place::Place as Gathering;
pub(crate) use self::place::PlaceKey;
use crate::Limits;
use crate::address::{self, PerPlace};
use crate::ice::IceConfig;
use crate::inbound::Busy;
use crate::outbound::Outbound;
use crate::pairing::{PairRefusal, Pairing};
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
}

/// What holds a nick.
#[derive(Debug)]
enum Holder {
    /// A WebSocket session.
    Ws(PeerId),
    /// A classic HTTP registration.
    Http(http::Registration),
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
        }
    }

    /// Joins `nick` on `conn` in the place `wanted`, or with a matching `token` reclaims the
    /// session holding it there.
    ///
    /// On success the welcome is already queued on `conn`, and the arrival is gathered for the
    /// next announcement (unless the session was reclaimed: then nobody sees a change). A
    /// token that matches nothing, as after a server restart, is ignored when the nick is free.
    /// A pairing code is used up only by a join that succeeds.
    pub(crate) fn join(
        &mut self,
        nick: Nick,
        token: Option<&SessionToken>,
        wanted: &Place,
        fresh: Fresh,
        mut conn: Connection,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        let (key, code) = self.resolve(wanted, conn.from, now)?;
        self.forget_expired_http_of(&key, &nick, now);
        let held_by = match self
            .places
            .get(&key)
            .and_then(|place| place.names.find(nick.as_str()))
        {
            None => None,
            Some((_, Holder::Http(_))) => return Err(taken(&nick)),
            Some((name, Holder::Ws(id))) => Some((name.to_owned(), id.clone())),
        };
        let Some((name, id)) = held_by else {
            return self.join_fresh(key, code, nick, fresh, conn, now);
        };
        let Some(token) = token else {
            return Err(taken(&nick));
        };
        let Some(session) = self.sessions.get(&id) else {
            // A holder always has its session; should they ever disagree, the nick is free.
            tracing::error!(%id, "a nick's holder has no session; freeing the nick");
            if let Some(place) = self.places.get_mut(&key) {
                place.names.free(&name);
            }
            self.drop_if_empty(&key);
            return Err(Refusal::new(ErrorCode::InvalidToken, "please join again"));
        };
        if !same_token(token, &session.token) {
            tracing::info!(nick = %nick, "refused a join with a wrong token");
            return Err(Refusal::new(
                ErrorCode::InvalidToken,
                format!(
                    "the nick {} is held by a session with another token",
                    session.nick
                ),
            ));
        }
        let (nick, token) = (session.nick.clone(), session.token.clone());
        let room = self.used(&key, code);
        self.welcome(&mut conn, &key, &id, &nick, &token, true, room);
        self.lingering.remove(&id);
        let from = conn.from;
        let Some(session) = self.sessions.get_mut(&id) else {
            return Err(Refusal::new(ErrorCode::InvalidToken, "please join again"));
        };
        // A session that moved (a phone from Wi-Fi to mobile data) is counted where it is now;
        // it was let in once, so the cap does not turn it away.
        if session.from != from {
            if let Some(old) = session.from {
                self.per_place.remove(old);
            }
            if let Some(new) = from {
                self.per_place.add_anyway(new);
            }
            session.from = from;
        }
        if !session.listed {
            session.listed = true;
            if let Some(place) = self.places.get_mut(&key) {
                place.changes.joined(UserInfo {
                    id: id.clone(),
                    nick: nick.clone(),
                });
                self.changed.insert(key);
            }
        }
        if let Some(mut old) = session.conn.replace(conn) {
            tracing::info!(%id, "a new connection took over the session");
            old.kick(Kick::TakenOver);
        }
        self.ws_presence.touch(id.clone(), now);
        tracing::debug!(%id, %nick, "resumed");
        Ok(id)
    }

    /// Joins `nick`, which nobody holds in place `key`, as a new session there.
    fn join_fresh(
        &mut self,
        key: PlaceKey,
        code: Option<PairCode>,
        nick: Nick,
        fresh: Fresh,
        mut conn: Connection,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        if matches!(key, PlaceKey::Room(_))
            && self
                .places
                .get(&key)
                .is_some_and(|room| room.members.len() >= self.room_size)
        {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                format!(
                    "this room is full: it takes {} people at most",
                    self.room_size
                ),
            ));
        }
        if let Some(from) = conn.from
            && !self.per_place.add(from)
        {
            return Err(Refusal::new(
                ErrorCode::TooManySessions,
                "too many people from your address are online here; try again in a minute",
            ));
        }
        let room = self.used(&key, code);
        self.welcome(&mut conn, &key, &fresh.id, &nick, &fresh.token, false, room);
        tracing::debug!(id = %fresh.id, %nick, "joined");
        let place = self.places.entry(key.clone()).or_default();
        place.changes.joined(UserInfo {
            id: fresh.id.clone(),
            nick: nick.clone(),
        });
        place
            .names
            .hold(nick.as_str(), Holder::Ws(fresh.id.clone()));
        place.members.insert(fresh.id.clone());
        self.changed.insert(key.clone());
        let from = conn.from;
        self.sessions.insert(
            fresh.id.clone(),
            Session {
                nick,
                token: fresh.token,
                place: key,
                conn: Some(conn),
                from,
                listed: true,
            },
        );
        self.ws_presence.touch(fresh.id.clone(), now);
        Ok(fresh.id)
    }

    /// The place a join names, looking a pairing code up (from `from`, at `now`): the key and
    /// the code, to use it up once the join succeeds.
    fn resolve(
        &mut self,
        wanted: &Place,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Result<(PlaceKey, Option<PairCode>), Refusal> {
        match wanted {
            Place::Lobby => self.lobby_of(from).map(|key| (key, None)).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NoLobby,
                    "this server has no lobby: make a private room, or enter a pairing code",
                )
            }),
            Place::Room(room) => Ok((PlaceKey::Room(room.clone()), None)),
            Place::Code(code) => match self.pairing.find(code, from, now) {
                Ok(room) => Ok((PlaceKey::Room(room), Some(code.clone()))),
                Err(refusal) => Err(pairing_refused(refusal, code)),
            },
        }
    }

    /// The lobby where people from `from` meet, when the server has one.
    pub(crate) fn lobby_of(&self, from: Option<IpAddr>) -> Option<PlaceKey> {
        match self.lobby {
            LobbyScope::Everyone => Some(PlaceKey::Lobby(None)),
            LobbyScope::Network => Some(PlaceKey::Lobby(Some(
                from.map_or(address::Network::Private, address::network),
            ))),
            LobbyScope::Off => None,
        }
    }

    /// Uses `code` up, if the join came by one; returns the room it led to, for the welcome.
    fn used(&mut self, key: &PlaceKey, code: Option<PairCode>) -> Option<RoomId> {
        let code = code?;
        self.pairing.used(&code);
        match key {
            PlaceKey::Room(room) => Some(room.clone()),
            PlaceKey::Lobby(_) => None,
        }
    }

    /// A pairing code that leads one other person into the room `id` is in, if connection
    /// `conn` holds the session; it replaces the code the session held.
    pub(crate) fn make_code(
        &mut self,
        id: &PeerId,
        conn: ConnId,
        numbers: [u32; 8],
        now: Instant,
    ) -> Result<ServerMessage, Refusal> {
        let room = match self.sessions.get(id) {
            Some(session) if self.is_current(id, conn) => match &session.place {
                PlaceKey::Room(room) => room.clone(),
                PlaceKey::Lobby(_) => {
                    return Err(Refusal::new(
                        ErrorCode::NoCode,
                        "a pairing code leads into a private room: make one first",
                    ));
                }
            },
            _ => {
                return Err(Refusal::new(
                    ErrorCode::NotJoined,
                    "your session has ended; join again",
                ));
            }
        };
        match self.pairing.make(id, &room, now, numbers) {
            Ok(code) => Ok(ServerMessage::PairCode {
                code,
                expires_in_secs: self.pairing.lifetime().as_secs(),
            }),
            Err(_) => Err(Refusal::new(
                ErrorCode::NoCode,
                "the server holds as many pairing codes as it can; try again in a few minutes, \
                 or share the room's link",
            )),
        }
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
        let message = ServerMessage::Signal {
            from: from.clone(),
            from_nick: sender.nick.clone(),
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
            let everyone = users(&self.sessions, &place.members);
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
                tracing::debug!(%id, "away: unlisted after lingering");
            }
        }
    }

    /// Everyone listed in place `key` now, as the next announcement will have them.
    #[cfg(test)]
    fn listed(&self, key: &PlaceKey) -> Vec<UserInfo> {
        self.places
            .get(key)
            .map_or_else(Vec::new, |place| users(&self.sessions, &place.members))
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
        if let Some(place) = self.places.get_mut(&session.place) {
            let held = match place.names.find(session.nick.as_str()) {
                Some((key, Holder::Ws(holder))) if holder == id => Some(key.to_owned()),
                _ => None,
            };
            if let Some(key) = held {
                place.names.free(&key);
            }
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

    /// Queues the welcome into place `key` on `conn`: its own fields, then the list of users
    /// there as of the last announcement, shared by every welcome until the next one rather
    /// than copied.
    #[allow(clippy::too_many_arguments)]
    fn welcome(
        &self,
        conn: &mut Connection,
        key: &PlaceKey,
        id: &PeerId,
        nick: &Nick,
        token: &SessionToken,
        resumed: bool,
        room: Option<RoomId>,
    ) {
        let welcome = ServerMessage::Welcome {
            id: id.clone(),
            nick: nick.clone(),
            token: token.clone(),
            resumed,
            users: Vec::new(),
            // Every welcome, a reconnect's too, carries credentials made now.
            ice_servers: self.ice.servers_for(id, SystemTime::now()),
            relay_only: self.ice.relay_only,
            heartbeat_secs: self.heartbeat_secs,
            room,
        };
        let listed = self
            .places
            .get(key)
            .map_or_else(|| Bytes::from_static(b"[]"), |place| place.changes.listed());
        if let Some(parts) = splice_users(&encode(&welcome), listed) {
            conn.deliver(Outbound::Parts(parts));
        }
    }
}

/// Every listed WebSocket user among `members` (lingering ones within their grace included),
/// sorted by nick. HTTP registrations are left out on purpose: they cannot do WebRTC with
/// Ferry, so listing them in the app would only offer transfers that fail.
fn users(sessions: &HashMap<PeerId, Session>, members: &HashSet<PeerId>) -> Vec<UserInfo> {
    let mut users: Vec<UserInfo> = members
        .iter()
        .filter_map(|id| {
            let session = sessions.get(id).filter(|session| session.listed)?;
            Some(UserInfo {
                id: id.clone(),
                nick: session.nick.clone(),
            })
        })
        .collect();
    users.sort_by_cached_key(|user| user.nick.key());
    users
}

/// What a person is told when a pairing code was not looked up or led nowhere.
fn pairing_refused(refusal: PairRefusal, code: &PairCode) -> Refusal {
    let wait = |wait: Duration| wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    match refusal {
        PairRefusal::Wrong => Refusal::new(
            ErrorCode::WrongCode,
            format!(
                "no room has the code {}: it may be mistyped, used already or expired",
                code.grouped()
            ),
        ),
        PairRefusal::TooManyFromAddress(after) => Refusal::new(
            ErrorCode::TooManyTries,
            format!(
                "too many wrong codes from your address; wait {} s before trying again",
                wait(after).max(1)
            ),
        ),
        PairRefusal::TooManyInAll(after) => Refusal::new(
            ErrorCode::TooManyTries,
            format!(
                "too many wrong codes on this server lately; wait {} s before trying again",
                wait(after).max(1)
            ),
        ),
        PairRefusal::Full => Refusal::new(ErrorCode::NoCode, "no codes can be made just now"),
    }
}

/// Puts `users` (a JSON array) into an encoded welcome in place of its empty list, as the
/// parts of one message. The empty list is found by its key: every string value before it is
/// JSON-escaped, so no nick or token can contain `"users":[]` with bare quotes.
fn splice_users(welcome: &str, users: Bytes) -> Option<Vec<Bytes>> {
    const EMPTY: &str = "\"users\":[]";
    let at = welcome.find(EMPTY)?;
    let (head, tail) = welcome.split_at(at + EMPTY.len() - 2);
    Some(vec![
        Bytes::copy_from_slice(head.as_bytes()),
        users,
        Bytes::copy_from_slice(&tail.as_bytes()[2..]),
    ])
}

/// Encodes a message once for all its recipients.
pub(crate) fn encode(message: &ServerMessage) -> Utf8Bytes {
    message.to_json().into()
}

fn taken(nick: &Nick) -> Refusal {
    Refusal::new(
        ErrorCode::NickTaken,
        format!("someone online already uses the nick {nick}, or one that looks like it"),
    )
}

/// Compares tokens in time independent of where they differ, so response times cannot be
/// used to guess a token digit by digit.
fn same_token(a: &SessionToken, b: &SessionToken) -> bool {
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
