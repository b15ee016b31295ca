//! Classic HTTP registrations (reg.cgi's `?username=NICK&identity=ID`) in the lobby's nick
//! namespace (the lobby of the caller's network, when the lobby is scoped so), under the same
//! lookalike rules as WebSocket users, and bounded: a registration never replaces or removes
//! one held by another identity, only the address that registered a nick can remove it
//! (`identity=0`), and one address can hold only a few. A server without a lobby takes none.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ferry_protocol::Nick;
use tokio::time::Instant;

use super::{Holder, PlaceKey, Registry};
use crate::presence::Presence;

/// How many classic registrations there may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Registrations from one address.
    pub per_ip: usize,
    /// Registrations in all.
    pub total: usize,
}

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpRefusal {
    /// Someone else holds the nick, or one that looks like it.
    #[error("the nick is taken")]
    Taken,
    /// The address has as many registrations as it may.
    #[error("too many registrations from this address")]
    TooManyFromAddress,
    /// The server has as many registrations as it may.
    #[error("too many registrations")]
    Full,
    /// Removing a registration made from another address.
    #[error("the registration was made from another address")]
    NotYours,
    /// The request names no valid nick and identity.
    #[error("the nick or identity is not valid")]
    Invalid,
    /// The server has no lobby for registrations to be in.
    #[error("this server has no lobby")]
    NoLobby,
}

/// One registration: the nick as typed, the identity it points to, and the address it came
/// from (`None` for a request without one, as in tests through the router alone).
#[derive(Debug)]
pub(super) struct Registration {
    nick: Nick,
    identity: String,
    from: Option<IpAddr>,
}

/// The registrations' presence and counts.
#[derive(Debug)]
pub(super) struct Registrations {
    /// Each registration's last sign of life, by its lobby and the key its nick is held under.
    presence: Presence<(PlaceKey, String)>,
    per_ip: HashMap<Option<IpAddr>, usize>,
    pub(super) total: usize,
    limits: HttpLimits,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            per_ip: 16,
            total: 10_000,
        }
    }
}

impl Registrations {
    pub(super) fn new(ttl: Duration, limits: HttpLimits) -> Self {
        Self {
            presence: Presence::new(ttl),
            per_ip: HashMap::new(),
            total: 0,
            limits,
        }
    }

    /// The lobbies and keys of registrations that expired at `now`, no longer counted.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(PlaceKey, String)> {
        self.presence.expire(now)
    }

    fn count(&mut self, from: Option<IpAddr>) {
        *self.per_ip.entry(from).or_insert(0) += 1;
        self.total += 1;
    }

    fn uncount(&mut self, from: Option<IpAddr>) {
        if let Some(count) = self.per_ip.get_mut(&from) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&from);
            }
        }
        self.total = self.total.saturating_sub(1);
    }
}

impl Registry {
    /// Registers or refreshes `nick` for `identity`, asked from `from`.
    pub(crate) fn register_http(
        &mut self,
        nick: Nick,
        identity: &str,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), HttpRefusal> {
        let lobby = self.lobby_of(from).ok_or(HttpRefusal::NoLobby)?;
        self.forget_expired_http_of(&lobby, &nick, now);
        let found = self
            .places
            .get(&lobby)
            .and_then(|place| place.names.find(nick.as_str()))
            .map(|(key, holder)| (key.to_owned(), holder));
        match found {
            None => {
                let limits = self.http.limits;
                if self.http.per_ip.get(&from).copied().unwrap_or(0) >= limits.per_ip {
                    return Err(HttpRefusal::TooManyFromAddress);
                }
                if self.http.total >= limits.total {
                    return Err(HttpRefusal::Full);
                }
                tracing::debug!(%nick, identity, "HTTP registration");
                self.http.count(from);
                let key = self.places.entry(lobby.clone()).or_default().names.hold(
                    nick.as_str(),
                    Holder::Http(Registration {
                        nick: nick.clone(),
                        identity: identity.to_owned(),
                        from,
                    }),
                );
                self.http.presence.touch((lobby, key), now);
                Ok(())
            }
            Some((key, Holder::Http(held))) if held.identity == identity => {
                self.http.presence.touch((lobby, key), now);
                Ok(())
            }
            Some(_) => Err(HttpRefusal::Taken),
        }
    }

    /// Removes the registration of `nick`, if `from` is the address that made it. Nothing to
    /// remove counts as done; a WebSocket user's nick is not a registration to remove.
    pub(crate) fn unregister_http(
        &mut self,
        nick: &Nick,
        from: Option<IpAddr>,
    ) -> Result<(), HttpRefusal> {
        let lobby = self.lobby_of(from).ok_or(HttpRefusal::NoLobby)?;
        let found = self
            .places
            .get(&lobby)
            .and_then(|place| place.names.find(nick.as_str()))
            .map(|(key, holder)| (key.to_owned(), holder));
        match found {
            Some((_, Holder::Ws(_) | Holder::Remote(_))) => Err(HttpRefusal::Taken),
            Some((_, Holder::Http(held))) if held.from != from => Err(HttpRefusal::NotYours),
            Some((key, Holder::Http(_))) => {
                self.remove_http(&lobby, &key);
                tracing::debug!(%nick, "HTTP registration removed");
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The identity of whoever holds `nick` (or a lookalike) in the lobby of `from` at `now`:
    /// a WebSocket user's peer id or an HTTP registration's identity.
    pub(crate) fn identity(
        &self,
        nick: &Nick,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Option<String> {
        let lobby = self.lobby_of(from)?;
        match self.places.get(&lobby)?.names.find(nick.as_str())? {
            (_, Holder::Ws(id) | Holder::Remote(id)) => Some(id.to_string()),
            (key, Holder::Http(held)) => self
                .http
                .presence
                .is_live(&(lobby.clone(), key.to_owned()), now)
                .then(|| held.identity.clone()),
        }
    }

    /// Everyone online in the lobby of `from` at `now`, of both kinds, as (nick, identity)
    /// sorted by nick.
    pub(crate) fn online(&self, from: Option<IpAddr>, now: Instant) -> Vec<(Nick, String)> {
        let Some(lobby) = self.lobby_of(from) else {
            return Vec::new();
        };
        let Some(place) = self.places.get(&lobby) else {
            return Vec::new();
        };
        let mut online: Vec<(Nick, String)> = place
            .names
            .iter()
            .filter_map(|(key, holder)| match holder {
                Holder::Ws(id) => {
                    let session = self.sessions.get(id)?;
                    Some((session.nick.clone(), id.to_string()))
                }
                Holder::Remote(id) => {
                    let known = self.remote.get(id)?;
                    Some((known.nick.clone(), id.to_string()))
                }
                Holder::Http(held) => self
                    .http
                    .presence
                    .is_live(&(lobby.clone(), key.clone()), now)
                    .then(|| (held.nick.clone(), held.identity.clone())),
            })
            .collect();
        online.sort_by_cached_key(|(nick, _)| nick.key());
        online
    }

    /// Frees `nick` (or its lookalike) in place `place` if an HTTP registration that has
    /// expired still holds it.
    pub(super) fn forget_expired_http_of(&mut self, place: &PlaceKey, nick: &Nick, now: Instant) {
        let expired = match self
            .places
            .get(place)
            .and_then(|gathering| gathering.names.find(nick.as_str()))
        {
            Some((key, Holder::Http(_)))
                if !self
                    .http
                    .presence
                    .is_live(&(place.clone(), key.to_owned()), now) =>
            {
                Some(key.to_owned())
            }
            _ => None,
        };
        if let Some(key) = expired {
            self.remove_http(place, &key);
        }
    }

    /// Removes the registration under `key` in place `place` and uncounts it.
    pub(super) fn remove_http(&mut self, place: &PlaceKey, key: &str) {
        let freed = self
            .places
            .get_mut(place)
            .and_then(|gathering| gathering.names.free(key));
        if let Some(Holder::Http(held)) = freed {
            self.http.uncount(held.from);
        }
        self.http.presence.remove(&(place.clone(), key.to_owned()));
        self.drop_if_empty(place);
    }
}
