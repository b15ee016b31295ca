//! The peer connections to each peer: the first lane carries every transfer's control
//! channel, further lanes carry chunks of striped transfers. A lane is made on first use (by
//! either side: a signal for a lane this side has not opened makes it), replaced when it
//! died, and the extra ones are closed when no transfer with that peer runs any more.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ferry_protocol::{
    DATA_CHANNEL_PREFIX, IceServer, PeerId, SignalPayload, TRANSFER_CHANNEL_LABEL, TransferId,
    TransferMessage,
};
use futures::future::FusedFuture;
use futures::{FutureExt, select};
use wasm_bindgen_futures::spawn_local;

use super::Engine;
use super::send::CONNECT_DEADLINE_MS;
use crate::core::sdp::session_id;
use crate::core::transfer::TransferError;
use crate::web::channel::{Channel, ChannelEvent};
use crate::web::peer::{LinkEvent, LinkEvents, PeerLink, SignalOut};
use crate::web::{JsError, Notify, log, sleep};

/// How long a new control channel may stay unopened over a connection that is up before a
/// fresh one is tried (see [`Engine::ask_peer`]): a channel opens within a round trip or two
/// of its association, far less than this even at 200 ms.
const REOPEN_MS: u32 = 2_000;

/// The links, by peer and lane.
#[derive(Default)]
pub(super) struct Links {
    links: RefCell<HashMap<(PeerId, u32), Rc<PeerLink>>>,
}

impl Links {
    /// Gives every link fresh ICE servers.
    pub(super) fn set_ice_servers(&self, servers: &[IceServer]) {
        for link in self.links.borrow().values() {
            link.set_ice_servers(servers);
        }
    }

    /// Drops every link to `peer`, which closes them.
    pub(super) fn forget(&self, peer: &PeerId) {
        self.links
            .borrow_mut()
            .retain(|(remote, _), _| remote != peer);
    }

    /// An offer for `lane` from `peer` that belongs to another peer connection than the link
    /// has (the peer made a new one after its old one broke): drops the old link, so the
    /// offer makes a new one. Its transfers notice and go on over the new one.
    pub(super) fn replace_if_new(&self, peer: &PeerId, lane: u32, sdp: &str) {
        let key = (peer.clone(), lane);
        let stale = self.links.borrow().get(&key).is_some_and(|link| {
            link.remote_session()
                .is_some_and(|known| Some(known.as_str()) != session_id(sdp))
        });
        if stale {
            self.links.borrow_mut().remove(&key);
        }
    }

    /// Whether the link registered for `peer` on `lane` is dead: a link reporting its end is
    /// the one in use only then, not when a newer one replaced it.
    fn dead(&self, peer: &PeerId, lane: u32) -> bool {
        self.links
            .borrow()
            .get(&(peer.clone(), lane))
            .is_some_and(|link| link.is_dead())
    }

    /// Drops the link for `peer` on `lane` if it is dead (and not a newer one since).
    fn drop_dead(&self, peer: &PeerId, lane: u32) {
        if self.dead(peer, lane) {
            self.links.borrow_mut().remove(&(peer.clone(), lane));
        }
    }

    /// The link to `peer` on `lane`, if there is one.
    pub(super) fn get(&self, peer: &PeerId, lane: u32) -> Option<Rc<PeerLink>> {
        self.links.borrow().get(&(peer.clone(), lane)).cloned()
    }

    /// Drops `link` if it is still the one registered for `peer` on `lane`, so the next use
    /// makes a fresh connection.
    fn discard(&self, peer: &PeerId, lane: u32, link: &Rc<PeerLink>) {
        let key = (peer.clone(), lane);
        let current = self
            .links
            .borrow()
            .get(&key)
            .is_some_and(|known| Rc::ptr_eq(known, link));
        if current {
            self.links.borrow_mut().remove(&key);
        }
    }

    /// Drops every link.
    pub(super) fn clear(&self) {
        self.links.borrow_mut().clear();
    }
}

impl Engine {
    /// The link to `peer` on `lane`, made on first use and again when the last one died.
    pub(super) fn link(&self, peer: &PeerId, lane: u32) -> Result<Rc<PeerLink>, JsError> {
        let key = (peer.clone(), lane);
        if let Some(link) = self.inner.links.links.borrow().get(&key)
            && !link.is_dead()
        {
            return Ok(Rc::clone(link));
        }
        let me = self
            .inner
            .me
            .borrow()
            .clone()
            .ok_or_else(|| JsError::plain("connecting", "not joined yet"))?;
        let events: LinkEvents = {
            let engine = Rc::downgrade(&self.inner);
            Rc::new(move |remote: &PeerId, event: LinkEvent| {
                if let Some(inner) = engine.upgrade() {
                    Engine { inner }.on_link_event(remote, lane, event);
                }
            })
        };
        let out: SignalOut = {
            let sink = Rc::clone(&self.inner.out);
            Rc::new(move |to: PeerId, payload: SignalPayload| sink(to, payload, lane))
        };
        let policy = self.inner.ice.borrow().policy();
        let link = Rc::new(PeerLink::new(&me, peer.clone(), &policy, out, events)?);
        self.inner
            .links
            .links
            .borrow_mut()
            .insert(key, Rc::clone(&link));
        Ok(link)
    }

    /// Opens a transfer's control channel on `link`; `drained` wakes a sender waiting for
    /// room on it.
    pub(super) fn open_control(&self, link: &PeerLink, drained: Notify) -> Rc<Channel> {
        Rc::new(Channel::new(
            link.open_channel(TRANSFER_CHANNEL_LABEL),
            self.inner.config.high_water,
            drained,
        ))
    }

    /// Opens a new control channel to `peer`, sends `first` on it and waits for the answer:
    /// the link, the channel and the answer (`None` when it was no message); `None` when none
    /// came within [`CONNECT_DEADLINE_MS`]. `what` says what `first` asks, for the console.
    ///
    /// A control channel still not open [`REOPEN_MS`] after it was made, over a connection
    /// whose association is up, is given up for a fresh one on the same connection: once in
    /// a while (a Firefox side, under load) such a channel stayed unopened for the whole
    /// deadline while a second one opened at once. Nothing was sent on one that never
    /// opened, so the other side cannot have been asked twice.
    pub(super) async fn ask_peer(
        &self,
        peer: &PeerId,
        first: &TransferMessage,
        what: &str,
        drained: Notify,
    ) -> Option<(Rc<PeerLink>, Rc<Channel>, Option<TransferMessage>)> {
        let link = self.link(peer, 0).ok()?;
        let mut control = self.open_control(&link, drained.clone());
        let mut deadline = Box::pin(sleep(CONNECT_DEADLINE_MS).fuse());
        let mut reopen = Box::pin(sleep(REOPEN_MS).fuse());
        loop {
            let event = select! {
                event = control.next().fuse() => event,
                () = reopen => {
                    if control.state() == "connecting" && link.is_associated() {
                        log(&format!(
                            "a new control channel to {} did not open within {REOPEN_MS} ms \
                             over a connection that is up; opening another for {what}",
                            self.nick_of(peer)
                        ));
                        control.close();
                        control = self.open_control(&link, drained.clone());
                    }
                    reopen = Box::pin(sleep(REOPEN_MS).fuse());
                    continue;
                },
                () = deadline => ChannelEvent::Closed,
            };
            match event {
                ChannelEvent::Open => control.send(first).ok()?,
                ChannelEvent::Message(message) => return Some((link, control, Some(message))),
                ChannelEvent::Closed => {
                    if deadline.is_terminated() {
                        // A peer on the server that does not answer for this long is news:
                        // say where the attempt stood, for whoever reads the console.
                        log(&format!(
                            "no answer from {} within {CONNECT_DEADLINE_MS} ms to {what}; its \
                             new control channel was {}, its link {}",
                            self.nick_of(peer),
                            control.state(),
                            link.states()
                        ));
                        // A connection that never came up in all that time is not given a
                        // second chance: ICE stuck in checking can stay there for long, and
                        // every later attempt over it would wait out its deadline in turn.
                        if !link.is_associated() {
                            self.inner.links.discard(peer, 0, &link);
                        }
                    }
                    control.close();
                    return None;
                }
                ChannelEvent::Chunk(..) | ChannelEvent::Unreadable(_) => {
                    return Some((link, control, None));
                }
            }
        }
    }

    /// Closes the extra lanes to `peer` once no transfer with them is running.
    pub(super) fn close_idle_lanes(&self, peer: &PeerId) {
        let busy = self
            .inner
            .jobs
            .borrow()
            .values()
            .any(|job| &job.peer() == peer && !job.transfer.borrow().is_ended());
        if !busy {
            self.inner
                .links
                .links
                .borrow_mut()
                .retain(|(remote, lane), _| remote != peer || *lane == 0);
        }
    }

    fn on_link_event(&self, remote: &PeerId, lane: u32, event: LinkEvent) {
        match event {
            LinkEvent::Channel(channel) => {
                let label = channel.label();
                match label.strip_prefix(DATA_CHANNEL_PREFIX) {
                    Some(id) => self.attach_lane(remote, id, channel),
                    None => self.incoming(remote.clone(), lane, channel),
                }
            }
            LinkEvent::Gone | LinkEvent::NoPath(_) => {
                // A link that a new one replaced (made after it broke) may report its end
                // long after its transfers went on over the new one; only the end of the
                // link in use ends anything. And only the first lane's end ends transfers: a
                // lost extra lane costs the blocks it carried, which go again over the others.
                if lane == 0 && self.inner.links.dead(remote, lane) {
                    match event {
                        LinkEvent::NoPath(why) => {
                            let peer = self.nick_of(remote);
                            self.fail_with(remote, &TransferError::NoPath { peer, why });
                        }
                        _ => self.peer_gone(remote),
                    }
                }
                // Drop the dead link later: this runs inside one of its own callbacks,
                // which must not be freed while it executes.
                let (engine, remote) = (self.clone(), remote.clone());
                spawn_local(async move { engine.inner.links.drop_dead(&remote, lane) });
            }
        }
    }

    /// Receiver: a channel for chunks of transfer `id` opened on another lane.
    fn attach_lane(&self, remote: &PeerId, id: &str, channel: web_sys::RtcDataChannel) {
        let job = TransferId::parse(id)
            .ok()
            .and_then(|id| self.job(&id))
            .filter(|job| &job.peer() == remote && !job.transfer.borrow().is_ended());
        let Some(job) = job else {
            channel.close();
            return;
        };
        self.receive_lane(&job, channel);
    }
}
