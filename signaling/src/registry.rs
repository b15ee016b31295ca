//! Who is online: WebSocket sessions and classic HTTP registrations in one nick namespace,
//! their presence, and the outbound queues the server writes to.
//!
//! Every operation is one method called under the server's single lock, so a join, the
//! welcome it sends and the broadcast that announces it happen as one step: no client can see
//! a `user_left` before the `user_joined` it refers to, or miss one between its welcome and
//! its first broadcast.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use ferry_protocol::{
    ErrorCode, Nick, PeerId, ServerMessage, SessionToken, SignalPayload, UserInfo,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::ice::IceConfig;
use crate::presence::Presence;

/// Numbers each accepted WebSocket, so a session can tell its current connection from one it
/// was taken over from.
pub(crate) type ConnId = u64;

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A message, already encoded once for all its recipients.
    Text(Utf8Bytes),
    /// The close frame; the writer ends after it.
    Close(CloseFrame),
}

/// Why the registry ends a connection from outside its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kick {
    /// A newer connection reclaimed the session with its token.
    TakenOver,
    /// No sign of life within the time-to-live.
    Expired,
    /// Its outbound queue is full: the client does not read what it is sent.
    TooSlow,
}

/// The registry's handle on one live WebSocket.
#[derive(Debug)]
pub(crate) struct Connection {
    id: ConnId,
    tx: mpsc::Sender<Outbound>,
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
    /// Who holds each nick, by [`Nick::key`]: the one namespace for both kinds of user.
    holders: HashMap<String, Holder>,
    ws_presence: Presence<PeerId>,
    /// Keyed by [`Nick::key`], like `holders`.
    http_presence: Presence<String>,
    connections_per_ip: HashMap<IpAddr, usize>,
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
    Http { nick: Nick, identity: String },
}

impl Connection {
    /// The handle for connection `id`, whose writer drains `tx` and whose task ends when
    /// `kick` fires.
    pub(crate) fn new(id: ConnId, tx: mpsc::Sender<Outbound>, kick: oneshot::Sender<Kick>) -> Self {
        Self {
            id,
            tx,
            kick: Some(kick),
        }
    }

    /// Queues `text` without waiting. A client whose queue is full is not reading: rather than
    /// let it hold up everyone else or grow without bound, it is disconnected.
    fn deliver(&mut self, text: &Utf8Bytes) {
        match self.tx.try_send(Outbound::Text(text.clone())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.id,
                    "outbound queue full; disconnecting a client that does not read"
                );
                self.kick(Kick::TooSlow);
            }
            // The connection's task is already ending and will unregister it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
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
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl Registry {
    /// An empty registry whose users stay online for `ttl` after their last sign of
    /// life, and whose welcomes carry the ICE servers of `ice` and `heartbeat_secs`.
    pub(crate) fn new(ttl: std::time::Duration, ice: IceConfig, heartbeat_secs: u64) -> Self {
        Self {
            ice,
            heartbeat_secs,
            sessions: HashMap::new(),
            holders: HashMap::new(),
            ws_presence: Presence::new(ttl),
            http_presence: Presence::new(ttl),
            connections_per_ip: HashMap::new(),
        }
    }

    /// Joins `nick` on `conn`, or with a matching `token` reclaims the session holding it.
    ///
    /// On success the welcome is already queued on `conn` and everyone else has been told
    /// (unless the session was reclaimed: then nobody sees a change). A token that matches
    /// nothing, as after a server restart, is ignored when the nick is free.
    pub(crate) fn join(
        &mut self,
        nick: Nick,
        token: Option<&SessionToken>,
        fresh: Fresh,
        mut conn: Connection,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        let key = nick.key();
        self.forget_expired_http(&key, now);
        let held_by = match self.holders.get(&key) {
            None => None,
            Some(Holder::Http { .. }) => return Err(taken(&nick)),
            Some(Holder::Ws(id)) => Some(id.clone()),
        };
        let Some(id) = held_by else {
            let users = self.users_except(&fresh.id);
            let user = UserInfo {
                id: fresh.id.clone(),
                nick: nick.clone(),
            };
            self.welcome(&mut conn, &fresh.id, &nick, &fresh.token, false, users);
            tracing::info!(id = %fresh.id, %nick, "joined");
            self.holders.insert(key, Holder::Ws(fresh.id.clone()));
            self.sessions.insert(
                fresh.id.clone(),
                Session {
                    nick,
                    token: fresh.token,
                    conn: Some(conn),
                },
            );
            self.ws_presence.touch(fresh.id.clone(), now);
            self.broadcast(&ServerMessage::UserJoined { user }, Some(&fresh.id));
            return Ok(fresh.id);
        };
        let Some(token) = token else {
            return Err(taken(&nick));
        };
        let users = self.users_except(&id);
        let Some(session) = self.sessions.get(&id) else {
            // A holder always has its session; should they ever disagree, the nick is free.
            tracing::error!(%id, "a nick's holder has no session; freeing the nick");
            self.holders.remove(&key);
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
        self.welcome(&mut conn, &id, &nick, &token, true, users);
        if let Some(session) = self.sessions.get_mut(&id)
            && let Some(mut old) = session.conn.replace(conn)
        {
            tracing::info!(%id, "a new connection took over the session");
            old.kick(Kick::TakenOver);
        }
        self.ws_presence.touch(id.clone(), now);
        tracing::info!(%id, %nick, "resumed");
        Ok(id)
    }

    /// Records a sign of life from `id` on connection `conn`.
    pub(crate) fn touch(&mut self, id: &PeerId, conn: ConnId, now: Instant) {
        if self.is_current(id, conn) {
            self.ws_presence.touch(id.clone(), now);
        }
    }

    /// Delivers `payload` to `to` only, stamped with the sender's id and nick.
    pub(crate) fn relay(
        &mut self,
        from: &PeerId,
        to: &PeerId,
        payload: SignalPayload,
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
        };
        let Some(conn) = self.sessions.get_mut(to).and_then(|s| s.conn.as_mut()) else {
            return Err(Refusal::new(
                ErrorCode::UnknownPeer,
                format!("nobody with the id {to} is online"),
            ));
        };
        if let Some(text) = encode(&message) {
            conn.deliver(&text);
        }
        tracing::debug!(%from, %to, "relayed a signal");
        Ok(())
    }

    /// Ends `id`'s session at once and tells everyone, if connection `conn` still holds it.
    pub(crate) fn leave(&mut self, id: &PeerId, conn: ConnId) {
        if self.is_current(id, conn) {
            self.remove_session(id);
            tracing::info!(%id, "left");
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
        tracing::info!(%id, "connection lost; keeping the session for a reconnect");
    }

    /// Ends every session and registration whose time-to-live ran out at `now`.
    pub(crate) fn sweep(&mut self, now: Instant) {
        for id in self.ws_presence.expire(now) {
            if let Some(mut conn) = self.remove_session(&id) {
                conn.kick(Kick::Expired);
            }
            tracing::info!(%id, "expired");
        }
        for key in self.http_presence.expire(now) {
            if matches!(self.holders.get(&key), Some(Holder::Http { .. })) {
                self.holders.remove(&key);
                tracing::info!(nick = %key, "HTTP registration expired");
            }
        }
    }

    /// Registers or refreshes `nick` for the classic HTTP API; false when someone else holds it.
    pub(crate) fn register_http(&mut self, nick: Nick, identity: &str, now: Instant) -> bool {
        let key = nick.key();
        self.forget_expired_http(&key, now);
        match self.holders.get(&key) {
            None => {
                tracing::info!(%nick, identity, "HTTP registration");
                self.holders.insert(
                    key.clone(),
                    Holder::Http {
                        nick,
                        identity: identity.to_owned(),
                    },
                );
                self.http_presence.touch(key, now);
                true
            }
            Some(Holder::Http { identity: held, .. }) if held == identity => {
                self.http_presence.touch(key, now);
                true
            }
            Some(_) => false,
        }
    }

    /// Removes the HTTP registration of `nick`; false when a WebSocket user holds the nick.
    pub(crate) fn unregister_http(&mut self, nick: &Nick) -> bool {
        let key = nick.key();
        match self.holders.get(&key) {
            Some(Holder::Ws(_)) => false,
            Some(Holder::Http { .. }) => {
                self.holders.remove(&key);
                self.http_presence.remove(&key);
                tracing::info!(%nick, "HTTP registration removed");
                true
            }
            None => true,
        }
    }

    /// The identity of whoever holds `nick` at `now`: a WebSocket user's peer id or an HTTP
    /// registration's identity.
    pub(crate) fn identity(&self, nick: &Nick, now: Instant) -> Option<String> {
        let key = nick.key();
        match self.holders.get(&key)? {
            Holder::Ws(id) => Some(id.to_string()),
            Holder::Http { identity, .. } => self
                .http_presence
                .is_live(&key, now)
                .then(|| identity.clone()),
        }
    }

    /// Everyone online at `now`, of both kinds, as (nick, identity) sorted by nick.
    pub(crate) fn online(&self, now: Instant) -> Vec<(Nick, String)> {
        let mut online: Vec<(Nick, String)> = self
            .holders
            .iter()
            .filter_map(|(key, holder)| match holder {
                Holder::Ws(id) => {
                    let session = self.sessions.get(id)?;
                    Some((session.nick.clone(), id.to_string()))
                }
                Holder::Http { nick, identity } => self
                    .http_presence
                    .is_live(key, now)
                    .then(|| (nick.clone(), identity.clone())),
            })
            .collect();
        online.sort_by_key(|(nick, _)| nick.key());
        online
    }

    /// Counts a new connection from `ip`; false when it already has `max`.
    pub(crate) fn open_connection(&mut self, ip: IpAddr, max: usize) -> bool {
        let count = self.connections_per_ip.entry(ip).or_insert(0);
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    /// Uncounts a connection from `ip`.
    pub(crate) fn close_connection(&mut self, ip: IpAddr) {
        if let Some(count) = self.connections_per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.connections_per_ip.remove(&ip);
            }
        }
    }

    fn is_current(&self, id: &PeerId, conn: ConnId) -> bool {
        self.sessions
            .get(id)
            .and_then(|session| session.conn.as_ref())
            .is_some_and(|current| current.id == conn)
    }

    /// Removes a session, frees its nick and tells everyone; returns its connection, if any.
    fn remove_session(&mut self, id: &PeerId) -> Option<Connection> {
        let session = self.sessions.remove(id)?;
        let key = session.nick.key();
        if matches!(self.holders.get(&key), Some(Holder::Ws(holder)) if holder == id) {
            self.holders.remove(&key);
        }
        self.ws_presence.remove(id);
        self.broadcast(&ServerMessage::UserLeft { id: id.clone() }, None);
        session.conn
    }

    /// Frees `key` if an HTTP registration that has expired still holds it.
    fn forget_expired_http(&mut self, key: &String, now: Instant) {
        if matches!(self.holders.get(key), Some(Holder::Http { .. }))
            && !self.http_presence.is_live(key, now)
        {
            self.holders.remove(key);
            self.http_presence.remove(key);
        }
    }

    /// Every WebSocket user but `id`, lingering ones included: to the others they are still
    /// online until they expire. HTTP registrations are left out on purpose: they cannot do
    /// WebRTC with Ferry, so listing them in the app would only offer transfers that fail.
    fn users_except(&self, id: &PeerId) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self
            .sessions
            .iter()
            .filter(|(other, _)| *other != id)
            .map(|(other, session)| UserInfo {
                id: other.clone(),
                nick: session.nick.clone(),
            })
            .collect();
        users.sort_by_key(|user| user.nick.key());
        users
    }

    fn welcome(
        &self,
        conn: &mut Connection,
        id: &PeerId,
        nick: &Nick,
        token: &SessionToken,
        resumed: bool,
        users: Vec<UserInfo>,
    ) {
        let welcome = ServerMessage::Welcome {
            id: id.clone(),
            nick: nick.clone(),
            token: token.clone(),
            resumed,
            users,
            // Every welcome, a reconnect's too, carries credentials made now.
            ice_servers: self.ice.servers_for(id, SystemTime::now()),
            relay_only: self.ice.relay_only,
            heartbeat_secs: self.heartbeat_secs,
        };
        if let Some(text) = encode(&welcome) {
            conn.deliver(&text);
        }
    }

    /// Sends `message` to every live connection but `except`'s, encoding it once.
    fn broadcast(&mut self, message: &ServerMessage, except: Option<&PeerId>) {
        let Some(text) = encode(message) else {
            return;
        };
        for (id, session) in &mut self.sessions {
            if Some(id) == except {
                continue;
            }
            if let Some(conn) = session.conn.as_mut() {
                conn.deliver(&text);
            }
        }
    }
}

/// Encodes a message for the wire. These types always serialize; should one ever fail, the
/// message is logged and skipped rather than taking the server down.
pub(crate) fn encode(message: &ServerMessage) -> Option<Utf8Bytes> {
    match serde_json::to_string(message) {
        Ok(text) => Some(text.into()),
        Err(err) => {
            tracing::error!(error = %err, "could not encode a server message");
            None
        }
    }
}

fn taken(nick: &Nick) -> Refusal {
    Refusal::new(
        ErrorCode::NickTaken,
        format!("someone online already uses the nick {nick}"),
    )
}

/// Compares tokens in time independent of where they differ, so response times cannot be
/// used to guess a token digit by digit.
fn same_token(a: &SessionToken, b: &SessionToken) -> bool {
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const TTL: Duration = Duration::from_secs(120);

    /// A registry entry point for one test connection: its handle's receiving ends.
    struct Peer {
        rx: mpsc::Receiver<Outbound>,
        _kick: oneshot::Receiver<Kick>,
    }

    fn connection(id: ConnId) -> (Connection, Peer) {
        let (tx, rx) = mpsc::channel(16);
        let (kick, kick_rx) = oneshot::channel();
        (Connection::new(id, tx, kick), Peer { rx, _kick: kick_rx })
    }

    fn fresh(byte: u8) -> Fresh {
        Fresh {
            id: PeerId::from_random_bytes([byte; PeerId::BYTES]),
            token: SessionToken::from_random_bytes([byte; SessionToken::BYTES]),
        }
    }

    fn nick(raw: &str) -> Nick {
        Nick::new(raw).unwrap()
    }

    /// Decodes everything queued for `peer` so far.
    fn received(peer: &mut Peer) -> Vec<ServerMessage> {
        let mut messages = Vec::new();
        while let Ok(Outbound::Text(text)) = peer.rx.try_recv() {
            messages.push(serde_json::from_str(text.as_str()).unwrap());
        }
        messages
    }

    #[test]
    fn http_and_websocket_users_share_one_nick_namespace() {
        let now = Instant::now();
        let mut registry = Registry::new(TTL, IceConfig::default(), 30);
        assert!(registry.register_http(nick("Ana"), "a1", now));
        let (conn, _peer) = connection(1);
        let refused = registry.join(nick("ana"), None, fresh(1), conn, now);
        assert_eq!(refused.map_err(|r| r.code), Err(ErrorCode::NickTaken));

        // Once the registration has expired, the nick is free for a WebSocket user, who then
        // holds it against HTTP.
        let later = now + TTL;
        let (conn, _peer) = connection(2);
        assert!(
            registry
                .join(nick("ANA"), None, fresh(2), conn, later)
                .is_ok()
        );
        assert!(!registry.register_http(nick("ana"), "a1", later));
        assert!(!registry.unregister_http(&nick("ana")));
        assert_eq!(
            registry.identity(&nick("ana"), later),
            Some(fresh(2).id.to_string())
        );
    }

    #[test]
    fn a_lingering_session_is_offline_for_signals_and_expires_with_an_announcement() {
        let now = Instant::now();
        let mut registry = Registry::new(TTL, IceConfig::default(), 30);
        let (conn, mut ana) = connection(1);
        let ana_id = registry
            .join(nick("ana"), None, fresh(1), conn, now)
            .unwrap();
        let (conn, _bo) = connection(2);
        let bo_id = registry
            .join(nick("bo"), None, fresh(2), conn, now)
            .unwrap();
        assert_eq!(received(&mut ana).len(), 2, "welcome and bo's arrival");

        let dropped_at = now + Duration::from_secs(10);
        registry.linger(&bo_id, 2, dropped_at);
        let refused = registry.relay(&ana_id, &bo_id, SignalPayload::Offer { sdp: "v=0".into() });
        assert_eq!(refused.map_err(|r| r.code), Err(ErrorCode::UnknownPeer));
        assert_eq!(registry.online(dropped_at).len(), 2, "still listed");

        // Ana heartbeats; bo's time-to-live counts from the drop.
        registry.touch(&ana_id, 1, dropped_at + TTL);
        registry.sweep(dropped_at + TTL - Duration::from_millis(1));
        assert!(received(&mut ana).is_empty());
        registry.sweep(dropped_at + TTL);
        assert_eq!(
            received(&mut ana),
            vec![ServerMessage::UserLeft { id: bo_id }]
        );
        assert_eq!(registry.online(dropped_at + TTL).len(), 1);
    }

    #[test]
    fn only_the_current_connection_can_end_a_session() {
        let now = Instant::now();
        let mut registry = Registry::new(TTL, IceConfig::default(), 30);
        let (conn, mut ana) = connection(1);
        registry
            .join(nick("ana"), None, fresh(1), conn, now)
            .unwrap();
        let (conn, _old) = connection(2);
        let bo = fresh(2);
        let token = bo.token.clone();
        let bo_id = registry.join(nick("bo"), None, bo, conn, now).unwrap();
        let (conn, _new) = connection(3);
        let resumed = registry.join(nick("bo"), Some(&token), fresh(3), conn, now);
        assert_eq!(resumed, Ok(bo_id.clone()));

        // The old connection's end changes nothing; the new one's leave is announced.
        registry.leave(&bo_id, 2);
        registry.linger(&bo_id, 2, now);
        assert_eq!(received(&mut ana).len(), 2, "welcome and bo's arrival only");
        registry.leave(&bo_id, 3);
        assert_eq!(
            received(&mut ana),
            vec![ServerMessage::UserLeft { id: bo_id }]
        );
    }
}
