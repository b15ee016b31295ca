//! The ICE servers each browser is given: fixed STUN/TURN servers, and TURN servers with
//! short-lived credentials in the TURN REST API scheme that coturn's `use-auth-secret` checks.
//!
//! In that scheme the user name is `EXPIRY:PEERID`, where EXPIRY is the Unix time in seconds
//! at which the credential stops working, and the password is
//! `base64(HMAC-SHA1(secret, user name))`. The relay knows the secret and so can check a
//! credential without talking to Ferry; a browser never sees the secret and cannot make a
//! credential of its own, and one that leaks stops working at its expiry.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_protocol::{IceServer, PeerId};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// What the server tells browsers about ICE.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// Servers with fixed credentials or none: STUN, or TURN without the REST scheme.
    pub fixed: Vec<IceServer>,
    /// TURN servers whose credentials are made per session.
    pub turn: Option<TurnRest>,
    /// Every browser uses relayed candidates only, so no peer learns another's address.
    pub relay_only: bool,
}

/// TURN servers that check credentials made from a shared secret.
#[derive(Clone, Debug)]
pub struct TurnRest {
    /// `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// The secret shared with the relay.
    pub secret: TurnSecret,
    /// How long a credential works after it is made.
    pub ttl: Duration,
}

/// The secret shared with the TURN relay. Its `Debug` hides it, so logging a configuration
/// can never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// Wraps the secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(…)")
    }
}

impl IceConfig {
    /// The servers for the session `peer`, with TURN credentials made at `now`.
    pub fn servers_for(&self, peer: &PeerId, now: SystemTime) -> Vec<IceServer> {
        let mut servers = self.fixed.clone();
        if let Some(turn) = &self.turn {
            servers.push(turn.server_for(peer, now));
        }
        servers
    }

    /// How long after a welcome its credentials should be renewed, when they expire at all.
    pub fn renew_after(&self) -> Option<Duration> {
        self.turn.as_ref().map(|turn| renew_after(turn.ttl))
    }
}

impl TurnRest {
    /// The TURN servers with a credential for `peer` that works until `now` plus the TTL.
    pub fn server_for(&self, peer: &PeerId, now: SystemTime) -> IceServer {
        let expiry = now
            .checked_add(self.ttl)
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs());
        let username = format!("{expiry}:{peer}");
        let credential = credential(&self.secret, &username);
        IceServer {
            urls: self.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        }
    }
}

/// `base64(HMAC-SHA1(secret, username))`: the password the relay expects for `username`.
pub fn credential(secret: &TurnSecret, username: &str) -> String {
    // HMAC takes a key of any length, so making it cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.0.as_bytes())
        .expect("HMAC accepts keys of every length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Renewing at three quarters of the lifetime leaves a session a quarter of it to get the new
/// credentials, even through a reconnect or two (a reconnect gets fresh ones anyway).
fn renew_after(ttl: Duration) -> Duration {
    ttl * 3 / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(ttl: Duration) -> TurnRest {
        TurnRest {
            urls: vec!["turn:relay.example:3478".into()],
            secret: TurnSecret::new("north"),
            ttl,
        }
    }

    #[test]
    fn the_credential_is_the_rest_api_hmac_of_the_user_name() {
        // Worked out independently: printf %s 1700000000:ana | openssl dgst -sha1 -hmac north
        // -binary | base64.
        assert_eq!(
            credential(&TurnSecret::new("north"), "1700000000:ana"),
            "/V6vMibmvRAPIMy3tyPu2GxFkDI="
        );
    }

    #[test]
    fn the_user_name_names_the_expiry_and_the_peer() {
        let peer = PeerId::from_random_bytes([0xab; PeerId::BYTES]);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let server = turn(Duration::from_secs(600)).server_for(&peer, now);
        let username = server.username.unwrap();
        assert_eq!(username, format!("1700000600:{peer}"));
        assert_eq!(
            server.credential.unwrap(),
            credential(&TurnSecret::new("north"), &username)
        );
    }

    #[test]
    fn fixed_servers_come_first_and_relay_servers_are_added_per_peer() {
        let stun = IceServer {
            urls: vec!["stun:stun.example:3478".into()],
            username: None,
            credential: None,
        };
        let config = IceConfig {
            fixed: vec![stun.clone()],
            turn: Some(turn(Duration::from_secs(60))),
            relay_only: false,
        };
        let peer = PeerId::from_random_bytes([1; PeerId::BYTES]);
        let servers = config.servers_for(&peer, SystemTime::now());
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0], stun);
        assert!(
            servers[1]
                .username
                .as_ref()
                .unwrap()
                .ends_with(peer.as_str())
        );
    }

    #[test]
    fn credentials_are_renewed_well_before_they_expire() {
        assert_eq!(
            renew_after(Duration::from_secs(86_400)),
            Duration::from_secs(64_800)
        );
        assert_eq!(renew_after(Duration::from_secs(8)), Duration::from_secs(6));
        assert_eq!(IceConfig::default().renew_after(), None);
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", turn(Duration::from_secs(1)));
        assert!(!shown.contains("north"), "{shown}");
    }
}
