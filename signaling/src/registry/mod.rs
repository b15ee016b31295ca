//! Who is online: WebSocket sessions and classic HTTP registrations in one nick namespace,
//! their presence, and the outbound queues the server writes to.
//!
//! Every operation is one method called under the server's single lock, so a join and the
//! welcome it sends happen as one step. Arrivals and departures are gathered and announced in
//! batches ([`Changes`]); a welcome lists everyone as of the last announcement, and the next
//! announcement brings the rest, so no client can miss a change or see one out of order.
//!
//! Nicks are held by what they look like ([`crate::lookalike::keys`]): a lookalike of a held
//! nick is taken, whichever kind of user holds it.

mod connection;
mod http;
#[cfg(test)]
mod model;
mod names;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ferry_protocol::{
    ErrorCode, Nick, PeerId, ServerMessage, SessionToken, SignalPayload, UserInfo, Wire,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

pub(crate) use self::connection::{ConnId, Connection, Kick};
pub use self::http::HttpLimits;
pub(crate) use self::http::HttpRefusal;
use self::names::Names;
use crate::Limits;
use crate::address::PerPlace;
use crate::changes::Changes;
use crate::ice::IceConfig;
use crate::inbound::Busy;
use crate::outbound::Outbound;
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
    /// Who holds each nick, by what it looks like: the one namespace for both kinds of user.
    names: Names,
    ws_presence: Presence<PeerId>,
    changes: Changes,
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
    /// whose welcomes carry the ICE servers of `ice` and `heartbeat_secs`, and which keeps
    /// `limits` (sessions per address, the lingering grace, classic registrations).
    pub(crate) fn new(ttl: Duration, ice: IceConfig, heartbeat_secs: u64, limits: &Limits) -> Self {
        Self {
            ice,
            heartbeat_secs,
            sessions: HashMap::new(),
            names: Names::default(),
            ws_presence: Presence::new(ttl),
            changes: Changes::default(),
            http: http::Registrations::new(ttl, limits.http_registrations),
            per_place: PerPlace::new(limits.max_sessions_per_ip),
            lingering: HashMap::new(),
            linger_grace: limits.linger_grace,
        }
    }

    /// Joins `nick` on `conn`, or with a matching `token` reclaims the session holding it.
    ///
    /// On success the welcome is already queued on `conn`, and the arrival is gathered for the
    /// next announcement (unless the session was reclaimed: then nobody sees a change). A
    /// token that matches nothing, as after a server restart, is ignored when the nick is free.
    pub(crate) fn join(
        &mut self,
        nick: Nick,
        token: Option<&SessionToken>,
        fresh: Fresh,
        mut conn: Connection,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        self.forget_expired_http_of(&nick, now);
        let held_by = match self.names.find(nick.as_str()) {
            None => None,
            Some((_, Holder::Http(_))) => return Err(taken(&nick)),
            Some((key, Holder::Ws(id))) => Some((key.to_owned(), id.clone())),
        };
        let Some((key, id)) = held_by else {
            if let Some(from) = conn.from
                && !self.per_place.add(from)
            {
                return Err(Refusal::new(
                    ErrorCode::TooManySessions,
                    "too many people from your address are online here; try again in a minute",
                ));
            }
            self.welcome(&mut conn, &fresh.id, &nick, &fresh.token, false);
            tracing::debug!(id = %fresh.id, %nick, "joined");
            self.changes.joined(UserInfo {
                id: fresh.id.clone(),
                nick: nick.clone(),
            });
            self.names.hold(nick.as_str(), Holder::Ws(fresh.id.clone()));
            let from = conn.from;
            self.sessions.insert(
                fresh.id.clone(),
                Session {
                    nick,
                    token: fresh.token,
                    conn: Some(conn),
                    from,
                    listed: true,
                },
            );
            self.ws_presence.touch(fresh.id.clone(), now);
            return Ok(fresh.id);
        };
        let Some(token) = token else {
            return Err(taken(&nick));
        };
        let Some(session) = self.sessions.get(&id) else {
            // A holder always has its session; should they ever disagree, the nick is free.
            tracing::error!(%id, "a nick's holder has no session; freeing the nick");
            self.names.free(&key);
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
        self.welcome(&mut conn, &id, &nick, &token, true);
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
            self.changes.joined(UserInfo {
                id: id.clone(),
                nick: nick.clone(),
            });
        }
        if let Some(mut old) = session.conn.replace(conn) {
            tracing::info!(%id, "a new connection took over the session");
            old.kick(Kick::TakenOver);
        }
        self.ws_presence.touch(id.clone(), now);
        tracing::debug!(%id, %nick, "resumed");
        Ok(id)
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
        let message = ServerMessage::Signal {
            from: from.clone(),
            from_nick: sender.nick.clone(),
            payload,
            lane,
        };
        let Some(conn) = self.sessions.get_mut(to).and_then(|s| s.conn.as_mut()) else {
            return Err(Refusal::new(
                ErrorCode::UnknownPeer,
                format!("nobody with the id {to} is online"),
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
        for key in self.http.expire(now) {
            if matches!(self.names.get(&key), Some(Holder::Http(_))) {
                self.remove_http(&key);
            }
        }
    }

    /// Announces who came and went since the last announcement, to every live connection,
    /// in one message encoded once.
    pub(crate) fn announce(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let everyone = self.users();
        let Some(message) = self.changes.announce(&everyone) else {
            return;
        };
        let text = encode(&message);
        for session in self.sessions.values_mut() {
            if let Some(conn) = session.conn.as_mut() {
                conn.deliver(Outbound::Text(text.clone()));
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
                self.changes.away(&id);
                tracing::debug!(%id, "away: unlisted after lingering");
            }
        }
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
        let held = match self.names.find(session.nick.as_str()) {
            Some((key, Holder::Ws(holder))) if holder == id => Some(key.to_owned()),
            _ => None,
        };
        if let Some(key) = held {
            self.names.free(&key);
        }
        self.ws_presence.remove(id);
        self.lingering.remove(id);
        if let Some(from) = session.from {
            self.per_place.remove(from);
        }
        // An unlisted session was announced as away when it was unlisted.
        if session.listed {
            self.changes.left(id);
        }
        session.conn
    }

    /// Every listed WebSocket user (lingering ones within their grace included), sorted by
    /// nick. HTTP registrations are left out on purpose: they cannot do WebRTC with Ferry, so
    /// listing them in the app would only offer transfers that fail.
    fn users(&self) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.listed)
            .map(|(id, session)| UserInfo {
                id: id.clone(),
                nick: session.nick.clone(),
            })
            .collect();
        users.sort_by_cached_key(|user| user.nick.key());
        users
    }

    /// Queues the welcome on `conn`: its own fields, then the list of users as of the last
    /// announcement, shared by every welcome until the next one rather than copied.
    fn welcome(
        &self,
        conn: &mut Connection,
        id: &PeerId,
        nick: &Nick,
        token: &SessionToken,
        resumed: bool,
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
        };
        if let Some(parts) = splice_users(&encode(&welcome), self.changes.listed()) {
            conn.deliver(Outbound::Parts(parts));
        }
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
