//! Joining: where a `join` leads (the lobby, a room, the room of a pairing code), a fresh
//! session or the reclaim of one with its token, the welcome it gets, and pairing codes made
//! for a room.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ferry_protocol::{
    ClusterMessage, ErrorCode, LobbyScope, Nick, PairCode, PeerId, Place, RoomId, ServerMessage,
    SessionToken, UserInfo,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Bytes;

use super::{
    ConnId, Connection, Fresh, Holder, Kick, PlaceKey, Refusal, Registry, Session, encode,
};
use crate::address;
use crate::outbound::Outbound;
use crate::pairing::PairRefusal;

/// Who a welcome greets: the session's own fields.
struct Greeting<'a> {
    id: &'a PeerId,
    nick: &'a Nick,
    token: &'a SessionToken,
    /// Whether the join reclaimed the session with its token.
    resumed: bool,
    /// The room, when a pairing code led there.
    room: Option<RoomId>,
}

/// Where a join goes: the place, the pairing code that led there (used up once the join
/// succeeds), and whether the nick must be claimed from the store first.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) key: PlaceKey,
    code: Option<PairCode>,
    /// False when a session here holds the nick: the join reclaims it with its token, or is
    /// refused, without asking the store.
    pub(crate) claim: bool,
}

impl Registry {
    /// Where a join of `nick` from `from` into `wanted` goes, or why it cannot: a pairing code
    /// is looked up (and a wrong one counted) here, and a nick a classic registration holds is
    /// refused at once.
    pub(crate) fn target(
        &mut self,
        nick: &Nick,
        wanted: &Place,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Result<Target, Refusal> {
        let (key, code) = self.resolve(wanted, from, now)?;
        self.forget_expired_http_of(&key, nick, now);
        let holder = self
            .places
            .get(&key)
            .and_then(|place| place.names.find(nick.as_str()))
            .map(|(_, holder)| holder);
        let claim = match holder {
            Some(Holder::Http(_)) => return Err(taken(nick)),
            Some(Holder::Ws(_)) => false,
            Some(Holder::Remote(_)) | None => true,
        };
        Ok(Target { key, code, claim })
    }

    /// Where a join of `nick` into `room`, led there by `code` (looked up in the shared
    /// store), goes: as [`Self::target`] for the room, the code used up once the join
    /// succeeds and named in the welcome.
    pub(crate) fn target_by_code(
        &mut self,
        nick: &Nick,
        room: RoomId,
        code: PairCode,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Result<Target, Refusal> {
        let mut target = self.target(nick, &Place::Room(room), from, now)?;
        target.code = Some(code);
        Ok(target)
    }

    /// Joins `nick` on `conn` in the place `wanted` (see [`Self::join_at`]).
    #[cfg(test)]
    pub(crate) fn join(
        &mut self,
        nick: Nick,
        token: Option<&SessionToken>,
        wanted: &Place,
        fresh: Fresh,
        conn: Connection,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        let target = self.target(&nick, wanted, conn.from, now)?;
        self.join_at(nick, token, target, fresh, conn, now)
    }

    /// Joins `nick` on `conn` in the place of `target`, or with a matching `token` reclaims the
    /// session holding it there.
    ///
    /// On success the welcome is already queued on `conn`, and the arrival is gathered for the
    /// next announcement (unless the session was reclaimed: then nobody sees a change). A
    /// token that matches nothing, as after a server restart, is ignored when the nick is free.
    /// A pairing code is used up only by a join that succeeds.
    pub(crate) fn join_at(
        &mut self,
        nick: Nick,
        token: Option<&SessionToken>,
        target: Target,
        fresh: Fresh,
        mut conn: Connection,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        let Target { key, code, .. } = target;
        self.forget_expired_http_of(&key, &nick, now);
        let held_by = match self
            .places
            .get(&key)
            .and_then(|place| place.names.find(nick.as_str()))
        {
            None => None,
            Some((_, Holder::Http(_))) => return Err(taken(&nick)),
            Some((_, Holder::Remote(id))) if fresh.claimed => {
                // The store says the nick is this token's: the session another instance
                // seemed to hold under it is gone, and this page is its holder, back.
                let id = id.clone();
                self.remote_left(&id);
                None
            }
            Some((_, Holder::Remote(_))) => return Err(taken(&nick)),
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
        let greeting = Greeting {
            id: &id,
            nick: &nick,
            token: &token,
            resumed: true,
            room,
        };
        self.welcome(&mut conn, &key, &greeting);
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
        let relisted = !session.listed;
        session.listed = true;
        if let Some(mut old) = session.conn.replace(conn) {
            tracing::info!(%id, "a new connection took over the session");
            old.kick(Kick::TakenOver);
        }
        if relisted {
            if let Some(place) = self.places.get_mut(&key) {
                place.changes.joined(UserInfo {
                    id: id.clone(),
                    nick: nick.clone(),
                });
                self.changed.insert(key.clone());
            }
            self.tell(|instance| ClusterMessage::Listed {
                instance: instance.to_owned(),
                place: key.wire(),
                id: id.clone(),
                nick: nick.clone(),
            });
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
                .is_some_and(|room| room.members.len() + room.remote.len() >= self.room_size)
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
            return Err(too_many_sessions());
        }
        let room = self.used(&key, code);
        let greeting = Greeting {
            id: &fresh.id,
            nick: &nick,
            token: &fresh.token,
            resumed: false,
            room,
        };
        self.welcome(&mut conn, &key, &greeting);
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
        self.tell(|instance| ClusterMessage::Listed {
            instance: instance.to_owned(),
            place: key.wire(),
            id: fresh.id.clone(),
            nick: nick.clone(),
        });
        let from = conn.from;
        // How many places its address has matters only to a new claim, made before this.
        let claim = super::claim_of(&key, &nick, &fresh.token, from, 0);
        self.sessions.insert(
            fresh.id.clone(),
            Session {
                claim,
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
    pub(crate) fn resolve(
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
        let room = self.room_of(id, conn)?;
        match self.pairing.make(id, &room, now, numbers) {
            Ok(code) => Ok(ServerMessage::PairCode {
                code,
                expires_in_secs: self.pairing.lifetime().as_secs(),
            }),
            Err(_) => Err(no_room_for_codes()),
        }
    }

    /// The room of `id`'s session, which connection `conn` must hold, for a pairing code into
    /// it; a session in a lobby has none to share.
    pub(crate) fn room_of(&self, id: &PeerId, conn: ConnId) -> Result<RoomId, Refusal> {
        match self.sessions.get(id) {
            Some(session) if self.is_current(id, conn) => match &session.place {
                PlaceKey::Room(room) => Ok(room.clone()),
                PlaceKey::Lobby(_) => Err(Refusal::new(
                    ErrorCode::NoCode,
                    "a pairing code leads into a private room: make one first",
                )),
            },
            _ => Err(Refusal::new(
                ErrorCode::NotJoined,
                "your session has ended; join again",
            )),
        }
    }

    /// Queues the welcome into place `key` on `conn`: its own fields, then the list of users
    /// there as of the last announcement, shared by every welcome until the next one rather
    /// than copied.
    fn welcome(&self, conn: &mut Connection, key: &PlaceKey, greeting: &Greeting<'_>) {
        let welcome = ServerMessage::Welcome {
            id: greeting.id.clone(),
            nick: greeting.nick.clone(),
            token: greeting.token.clone(),
            resumed: greeting.resumed,
            users: Vec::new(),
            // Every welcome, a reconnect's too, carries credentials made now.
            ice_servers: self.ice.servers_for(greeting.id, SystemTime::now()),
            relay_only: self.ice.relay_only,
            heartbeat_secs: self.heartbeat_secs,
            room: greeting.room.clone(),
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

/// What a person is told when their address has as many sessions as it may.
pub(crate) fn too_many_sessions() -> Refusal {
    Refusal::new(
        ErrorCode::TooManySessions,
        "too many people from your address are online here; try again in a minute",
    )
}

/// What a person is told when no pairing code can be made for want of room.
pub(crate) fn no_room_for_codes() -> Refusal {
    Refusal::new(
        ErrorCode::NoCode,
        "the server holds as many pairing codes as it can; try again in a few minutes, or share \
         the room's link",
    )
}

/// What a person is told when a pairing code was not looked up or led nowhere.
pub(crate) fn pairing_refused(refusal: PairRefusal, code: &PairCode) -> Refusal {
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
pub(super) fn splice_users(welcome: &str, users: Bytes) -> Option<Vec<Bytes>> {
    const EMPTY: &str = "\"users\":[]";
    let at = welcome.find(EMPTY)?;
    let (head, tail) = welcome.split_at(at + EMPTY.len() - 2);
    Some(vec![
        Bytes::copy_from_slice(head.as_bytes()),
        users,
        Bytes::copy_from_slice(&tail.as_bytes()[2..]),
    ])
}

/// The refusal of a nick someone holds.
pub(crate) fn taken(nick: &Nick) -> Refusal {
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
