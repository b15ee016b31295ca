//! A joined session: who is here, the connections with them (one per peer and lane, made on
//! first use by either side), and the channels peers open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use ferry_protocol::{PeerId, Roster, SignalPayload, UserInfo};
use tokio::sync::{mpsc, watch};

use crate::link::{Incoming, Link, LinkError, LinkSettings, debug_note};
use crate::signaling::{Event, Joined, Outbox, Welcome};

/// How long a leave may take to reach the server.
const LEAVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The connections with everyone, by peer and lane.
#[derive(Debug)]
pub struct Peers {
    settings: Mutex<LinkSettings>,
    links: Mutex<HashMap<(PeerId, u32), Link>>,
    incoming: mpsc::UnboundedSender<Incoming>,
}

impl Peers {
    /// The link with `peer` on `lane`, made now when there is none (or it died).
    ///
    /// # Errors
    /// When the WebRTC stack cannot make one.
    pub async fn link(&self, peer: &PeerId, lane: u32) -> Result<Link, LinkError> {
        let key = (peer.clone(), lane);
        if let Some(link) = self.lock_links().get(&key)
            && !link.is_dead()
        {
            return Ok(link.clone());
        }
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let link = Link::new(&settings, peer.clone(), lane, self.incoming.clone()).await?;
        // Another task may have made one meanwhile; the first one stays.
        let mut links = self.lock_links();
        let kept = links
            .entry(key)
            .and_modify(|old| {
                if old.is_dead() {
                    *old = link.clone();
                }
            })
            .or_insert_with(|| link.clone())
            .clone();
        Ok(kept)
    }

    /// Hands a peer's signal to its link; an offer from a new connection of theirs (they
    /// reloaded) replaces the old link.
    async fn signal(&self, from: &PeerId, payload: SignalPayload, lane: u32) {
        if let SignalPayload::Offer { sdp } = &payload {
            let stale = self
                .lock_links()
                .get(&(from.clone(), lane))
                .filter(|link| link.is_other_session(sdp))
                .cloned();
            if let Some(stale) = stale {
                self.lock_links().remove(&(from.clone(), lane));
                stale.close().await;
            }
        }
        match self.link(from, lane).await {
            Ok(link) => link.signal(payload),
            Err(error) => eprintln!("ferry: {error}"),
        }
    }

    /// Closes every link.
    pub async fn close_all(&self) {
        let all: Vec<Link> = self.lock_links().drain().map(|(_, link)| link).collect();
        for link in all {
            link.close().await;
        }
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, HashMap<(PeerId, u32), Link>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A joined session.
#[derive(Debug)]
pub struct Session {
    /// What the server said on joining.
    pub welcome: Welcome,
    /// Sends to the server.
    pub outbox: Outbox,
    /// The connections.
    pub peers: Arc<Peers>,
    /// The others here, as they come and go.
    pub roster: watch::Receiver<Vec<UserInfo>>,
    /// Why the session ended, once it did.
    pub lost: watch::Receiver<Option<String>>,
    /// Channels peers open.
    pub incoming: mpsc::UnboundedReceiver<Incoming>,
    /// The connection to the server.
    signaling: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Starts routing the server's events for a session `joined`.
    pub fn start(joined: Joined, settings: LinkSettings) -> Self {
        let Joined {
            welcome,
            outbox,
            mut events,
            task: signaling,
        } = joined;
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let peers = Arc::new(Peers {
            settings: Mutex::new(settings),
            links: Mutex::default(),
            incoming: incoming_tx,
        });
        let mut known = Roster::new();
        known.welcome(welcome.id.clone(), welcome.users.clone());
        let (roster_tx, roster) = watch::channel(known.users().to_vec());
        let (lost_tx, lost) = watch::channel(None);
        let me = welcome.id.clone();
        let routing = Arc::clone(&peers);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    Event::Signal {
                        from,
                        payload,
                        lane,
                    } => routing.signal(&from, payload, lane).await,
                    // A peer who left keeps its connections until they fail: a data channel
                    // outlives a dropped signaling socket.
                    Event::Users { joined, left } => {
                        known.changed(joined, &left, &[]);
                        let _ = roster_tx.send(known.users().to_vec());
                    }
                    Event::Rejoined(users) => {
                        known.welcome(me.clone(), users);
                        let _ = roster_tx.send(known.users().to_vec());
                    }
                    Event::IceServers(servers) => {
                        routing
                            .settings
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .ice_servers = servers;
                    }
                    Event::Error(message) => debug_note(&format!("the server said: {message}")),
                    Event::Lost(why) => {
                        let _ = lost_tx.send(Some(why));
                        break;
                    }
                }
            }
        });
        Self {
            welcome,
            outbox,
            peers,
            roster,
            lost,
            incoming,
            signaling,
        }
    }

    /// The one here called `nick` (nicks are unique regardless of case).
    pub fn find(&self, nick: &str) -> Option<UserInfo> {
        let wanted = nick.to_lowercase();
        self.roster
            .borrow()
            .iter()
            .find(|user| user.nick.as_str().to_lowercase() == wanted)
            .cloned()
    }

    /// The one here called `nick`, waiting up to `patience` for them to be listed: a join
    /// reaches the others' lists in the server's next batch, a moment after its welcome.
    pub async fn wait_for(&self, nick: &str, patience: std::time::Duration) -> Option<UserInfo> {
        let mut roster = self.roster.clone();
        let found = tokio::time::timeout(patience, async {
            loop {
                if let Some(user) = self.find(nick) {
                    return Some(user);
                }
                roster.changed().await.ok()?;
            }
        });
        found.await.ok().flatten()
    }

    /// The nick of `peer`, or its id when it is not listed.
    pub fn nick_of(&self, peer: &PeerId) -> String {
        self.roster
            .borrow()
            .iter()
            .find(|user| &user.id == peer)
            .map_or_else(|| peer.to_string(), |user| user.nick.as_str().to_owned())
    }

    /// Leaves: the server is told (so nobody lists this session on), and every connection is
    /// closed.
    pub async fn leave(self) {
        self.outbox.leave();
        self.peers.close_all().await;
        let _ = tokio::time::timeout(LEAVE_LIMIT, self.signaling).await;
    }
}
