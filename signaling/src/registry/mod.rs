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

mod http;
#[cfg(test)]
mod model;
mod names;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::SystemTime;

use ferry_protocol::{
    ErrorCode, Nick, PeerId, ServerMessage, SessionToken, SignalPayload, UserInfo, Wire,
};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

pub use self::http::HttpLimits;
pub(crate) use self::http::HttpRefusal;
use self::names::Names;
use crate::changes::Changes;
use crate::ice::IceConfig;
use crate::outbound::{self, Outbound, Refused};
use crate::presence::Presence;
use crate::throttle::Throttle;

/// Numbers each accepted WebSocket, so a session can tell its current connection from one it
/// was taken over from.
pub(crate) type ConnId = u64;

/// Why the registry ends a connection from outside its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kick {
    /// A newer connection reclaimed the session with its token.
    TakenOver,
    /// No sign of life within the time-to-live.
    Expired,
    /// It is over its outbound byte budget: the client does not read what it is sent.
    TooSlow,
}

/// The registry's handle on one live WebSocket.
#[derive(Debug)]
pub(crate) struct Connection {
    id: ConnId,
    tx: outbound::Sender,
    kick: Option<oneshot::Sender<Kick>>,
}

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
}

/// One WebSocket user's session; it outlives an abnormally dropped socket until it expires.
#[derive(Debug)]
struct Session {
    nick: Nick,
    token: SessionToken,
    /// `None` while the socket is gone and the session waits to be reclaimed or to expire.
    conn: Option<Connection>,
}

/// What holds a nick.
#[derive(Debug)]
enum Holder {
    /// A WebSocket session.
    Ws(PeerId),
    /// A classic HTTP registration.
    Http(http::Registration),
}

/// Slow readers can be many at once in a storm; one line a second says so.
static TOO_SLOW: Throttle = Throttle::new();

impl Connection {
    /// The handle for connection `id`, whose writer drains `tx` and whose task ends when
    /// `kick` fires.
    pub(crate) fn new(id: ConnId, tx: outbound::Sender, kick: oneshot::Sender<Kick>) -> Self {
        Self {
            id,
            tx,
            kick: Some(kick),
        }
    }

    /// Queues `message` without waiting. A client over its byte budget is not reading: rather
    /// than let it hold up everyone else or grow without bound, it is disconnected.
    fn deliver(&mut self, message: Outbound) {
        match self.tx.push(message) {
            Ok(()) => {}
            Err(Refused::Full) => {
                if let Some(skipped) = TOO_SLOW.allow() {
                    tracing::warn!(
                        conn = self.id,
                        similar_skipped = skipped,
                        "outbound budget spent; disconnecting a client that does not read"
                    );
                }
                self.kick(Kick::TooSlow);
            }
            // The connection's task is already ending and will unregister it.
            Err(Refused::Closed) => {}
        }
    }

    /// Asks the connection's task to end, once.
    fn kick(&mut self, why: Kick) {
        if let Some(kick) = self.kick.take() {
            // The task may have ended on its own meanwhile; then there is nobody to tell.
            let _ = kick.send(why);
        }
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
    /// whose welcomes carry the ICE servers of `ice` and `heartbeat_secs`, and whose classic
    /// registrations are bounded by `http_limits`.
    pub(crate) fn new(
        ttl: std::time::Duration,
        ice: IceConfig,
        heartbeat_secs: u64,
        http_limits: HttpLimits,
    ) -> Self {
        Self {
            ice,
            heartbeat_secs,
            sessions: HashMap::new(),
            names: Names::default(),
            ws_presence: Presence::new(ttl),
            changes: Changes::default(),
            http: http::Registrations::new(ttl, http_limits),
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
            self.welcome(&mut conn, &fresh.id, &nick, &fresh.token, false);
            tracing::debug!(id = %fresh.id, %nick, "joined");
            self.changes.joined(UserInfo {
                id: fresh.id.clone(),
                nick: nick.clone(),
            });
            self.names.hold(nick.as_str(), Holder::Ws(fresh.id.clone()));
            self.sessions.insert(
                fresh.id.clone(),
                Session {
                    nick,
                    token: fresh.token,
                    conn: Some(conn),
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
        if let Some(session) = self.sessions.get_mut(&id)
            && let Some(mut old) = session.conn.replace(conn)
        {
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
    pub(crate) fn relay(
        &mut self,
        from: &PeerId,
        to: &PeerId,
        payload: SignalPayload,
        lane: u32,
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
        conn.deliver(Outbound::Text(encode(&message)));
        tracing::trace!(%from, %to, "relayed a signal");
        Ok(())
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
        self.changes.left(id);
        session.conn
    }

    /// Every WebSocket user, lingering ones included (to the others they are online until
    /// they expire), sorted by nick. HTTP registrations are left out on purpose: they cannot
    /// do WebRTC with Ferry, so listing them in the app would only offer transfers that fail.
    fn users(&self) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self
            .sessions
            .iter()
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
