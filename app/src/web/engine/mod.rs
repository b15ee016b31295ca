//! The transfer engine: the transfers in flight, each driven by a task of its own over the
//! peer connections to its peer, publishing plain rows and offers for the views.
//!
//! One job per file: [`job`] is one transfer's shared state; [`send`] is the sender's
//! pipeline (read a block, hash it, stripe its chunks over the lanes, announce its digest)
//! and [`sending`] what its tasks share and the reader of the receiver's answers beside it;
//! [`receive`] is the receiver's (take the offer, ask, gather chunks), [`receiving`] what its
//! task holds, and [`store`] checks, writes and hands over the blocks; [`folder`] hands a
//! received folder over (written into the picked folder, or as one zip); [`resume`] pauses a
//! transfer whose connection broke and brings it back; [`records`] and [`reopen`] let incoming
//! and outgoing transfers outlive a reload; [`lanes`] picks the channel for each chunk and
//! opens more peer connections when striping pays, [`links`] keeps the peer connections to
//! each peer (one per lane), [`storage`] the private file system and the received files,
//! [`publish`] turns jobs into rows for the views, and [`types`] what the views get. What
//! decides anything lives in [`crate::core`].
//!
//! Signaling is injected — signals out through a callback, signals in through
//! [`Engine::handle_signal`] — so two engines can talk inside one page in a test, through
//! exactly the code the app runs.

mod folder;
mod job;
mod lanes;
mod links;
mod publish;
mod receive;
mod receiving;
mod records;
mod reopen;
mod resume;
mod send;
mod sending;
mod storage;
mod store;
mod talk;
mod types;
mod verifying;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use ferry_protocol::{IceServer, PeerId, SignalPayload, TransferId, TransferMessage};

use self::job::Job;
use self::records::Restored;
pub use self::storage::Answer;
use self::storage::Storage;
pub use self::types::{EngineConfig, EngineEvent, EngineEvents, SignalSink, VerifyStep};
use super::peer::IcePolicy;
use crate::core::rows::FileRow;
use crate::core::transfer::{Direction, TransferError};
use crate::web::Notify;

/// The window of the speed estimate, in seconds.
const RATE_WINDOW: f64 = 3.0;

/// The engine; cheap to clone, all clones are the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Rc<Inner>,
}

struct Inner {
    config: EngineConfig,
    out: SignalSink,
    events: EngineEvents,
    me: RefCell<Option<PeerId>>,
    /// This user's nick, for messages the other side reads.
    my_nick: RefCell<String>,
    ice: RefCell<IceSettings>,
    nicks: RefCell<HashMap<PeerId, String>>,
    /// The peers on the server now, as far as this engine heard.
    present: RefCell<HashSet<PeerId>>,
    links: links::Links,
    jobs: RefCell<HashMap<TransferId, Rc<Job>>>,
    /// Incoming transfers brought back from their records after a reload, until their
    /// senders ask to go on.
    restored: RefCell<HashMap<TransferId, Restored>>,
    /// Outgoing transfers this page sent before it was reloaded, until they run again.
    reopened: RefCell<HashMap<TransferId, reopen::Reopened>>,
    /// Wakes whoever waits for a user to come on the server.
    arrivals: Notify,
    /// Paused transfers this side discarded while their receiver was away, by the
    /// receiver's nick: they are told when they are back.
    untold: RefCell<Vec<(String, TransferId)>>,
    storage: Storage,
    /// What is known of each peer's device, and the verifications under way.
    talk: talk::Talk,
    backpressure_waits: Cell<u64>,
    most_in_flight: Cell<u64>,
}

/// What new peer connections are configured with.
#[derive(Default)]
struct IceSettings {
    servers: Vec<IceServer>,
    /// The server asks for relayed connections only.
    server_relay_only: bool,
    /// This user asked to hide their address.
    hide_ip: bool,
    /// This device's key.
    certificate: Option<web_sys::RtcCertificate>,
}

impl IceSettings {
    fn policy(&self) -> IcePolicy {
        IcePolicy {
            servers: self.servers.clone(),
            relay_only: self.server_relay_only || self.hide_ip,
            certificate: self.certificate.clone(),
        }
    }
}

impl Engine {
    /// An engine whose signals go to `out` and whose news goes to `events`.
    pub fn new(config: EngineConfig, out: SignalSink, events: EngineEvents) -> Self {
        Self {
            inner: Rc::new(Inner {
                config,
                out,
                events,
                me: RefCell::new(None),
                my_nick: RefCell::new("the other user".into()),
                ice: RefCell::new(IceSettings::default()),
                nicks: RefCell::new(HashMap::new()),
                present: RefCell::new(HashSet::new()),
                links: links::Links::default(),
                jobs: RefCell::new(HashMap::new()),
                restored: RefCell::new(HashMap::new()),
                reopened: RefCell::new(HashMap::new()),
                arrivals: Notify::default(),
                untold: RefCell::new(Vec::new()),
                storage: Storage::new(),
                talk: talk::Talk::default(),
                backpressure_waits: Cell::new(0),
                most_in_flight: Cell::new(0),
            }),
        }
    }

    /// Sets this user's id and nick (from the server's welcome), the ICE servers for new
    /// links and whether the server wants them relayed only.
    pub fn set_identity(
        &self,
        me: PeerId,
        nick: &str,
        ice_servers: Vec<IceServer>,
        relay_only: bool,
    ) {
        *self.inner.me.borrow_mut() = Some(me);
        *self.inner.my_nick.borrow_mut() = nick.to_owned();
        let mut ice = self.inner.ice.borrow_mut();
        ice.server_relay_only = relay_only;
        ice.servers = ice_servers;
    }

    /// Applies fresh TURN credentials to every open link and keeps them for new ones.
    pub fn set_ice_servers(&self, ice_servers: Vec<IceServer>) {
        self.inner.links.set_ice_servers(&ice_servers);
        self.inner.ice.borrow_mut().servers = ice_servers;
    }

    /// Whether new links use relayed candidates only, so peers do not learn this user's
    /// address; links that exist keep how they were made.
    pub fn set_hide_ip(&self, hide: bool) {
        self.inner.ice.borrow_mut().hide_ip = hide;
    }

    /// Remembers how a peer is called, for status texts, and that they are on the server: a
    /// transfer paused with someone of that nick goes on with them.
    ///
    /// Only an arrival is news. Every relayed signal says again who its sender is, and a
    /// peer already here saying so must not look like one coming back: that would abandon a
    /// resumption under way with them (their answer to it is such a signal) and start it over.
    pub fn set_nick(&self, peer: &PeerId, nick: &str) {
        self.inner
            .nicks
            .borrow_mut()
            .insert(peer.clone(), nick.to_owned());
        let arrived = self.inner.present.borrow_mut().insert(peer.clone());
        if arrived {
            self.peer_back(peer, nick);
            self.inner.arrivals.notify_all();
        }
    }

    /// Applies a signal relayed from `from` for the peer connection on `lane`.
    pub fn handle_signal(&self, from: PeerId, from_nick: &str, payload: SignalPayload, lane: u32) {
        self.set_nick(&from, from_nick);
        if let SignalPayload::Offer { sdp } = &payload {
            self.inner.links.replace_if_new(&from, lane, sdp);
        }
        match self.link(&from, lane) {
            Ok(link) => link.signal(payload),
            Err(error) => super::log(&format!("no connection to {from_nick}: {error}")),
        }
    }

    /// The peer left the server: pause what is running with them (it goes on when they are
    /// back), fail what they had not answered yet, and drop their links.
    pub fn peer_left(&self, peer: &PeerId) {
        self.inner.present.borrow_mut().remove(peer);
        self.peer_gone(peer);
        self.peer_away(peer);
        self.inner.links.forget(peer);
        if self.inner.talk.forget(peer) {
            let nick = self.nick_of(peer);
            self.verify_step(peer, VerifyStep::Stopped(format!("{nick} left.")));
        }
    }

    /// The peer cannot be reached through the server for now: its connection to the server
    /// dropped a while ago, and it may come back. No new connection can be made with it, but
    /// what runs over a connection already made goes on; a paused transfer waits for it.
    pub fn peer_unreachable(&self, peer: &PeerId) {
        self.inner.present.borrow_mut().remove(peer);
        self.peer_away(peer);
    }

    /// Opens the private storage (and clears what closed tabs left) ahead of the first
    /// transfer.
    pub async fn prepare_storage(&self) {
        let (tabs, abandoned) = match self.opfs().await {
            Some(opfs) => (opfs.tabs(), opfs.abandoned().to_vec()),
            None => (vec![self.inner.storage.tab().to_owned()], Vec::new()),
        };
        self.restore_records(&tabs, &abandoned);
        self.restore_sent_records(&tabs, &abandoned);
    }

    /// Answers an offer.
    pub fn answer(&self, id: &TransferId, answer: Answer) {
        super::mark("ferry:accept");
        if let Some(job) = self.job(id)
            && let Some(sender) = job.answer.borrow_mut().take()
        {
            let _ = sender.send(answer);
        }
    }

    /// Cancels a transfer from this side.
    pub fn cancel(&self, id: &TransferId) {
        let Some(job) = self.job(id) else {
            if !self.discard_restored(id) {
                self.discard_reopened(id);
            }
            return;
        };
        if job.transfer.borrow().is_ended() {
            return;
        }
        // The cancellation cannot go over a connection that broke.
        if job.transfer.borrow().is_paused()
            && job.transfer.borrow().direction == Direction::Outgoing
        {
            self.tell_discarded(&job);
        }
        let _ = job.control().send(&TransferMessage::Cancel);
        job.transfer.borrow_mut().cancel();
        // Closing wakes the transfer's tasks wherever they wait; queued messages, the
        // cancellation included, still reach the other side first. A paused transfer's task
        // waits for the peer instead.
        job.close();
        job.back.notify_all();
        self.publish(&job);
        (self.inner.events)(EngineEvent::OfferGone(id.clone()));
    }

    /// The page is going: closes every peer connection, so the other browsers see their
    /// transfers with this one end at once, and deletes this tab's private files.
    pub fn shutdown(&self) {
        self.save_records_now();
        self.forget_files();
        self.inner.links.clear();
    }

    /// How many times sending has waited for room on a channel.
    pub fn backpressure_waits(&self) -> u64 {
        self.inner.backpressure_waits.get()
    }

    /// The most bytes any transfer from this engine had sent for blocks not yet stored; never
    /// above [`EngineConfig::window`] (raised to one block when smaller).
    pub fn most_in_flight(&self) -> u64 {
        self.inner.most_in_flight.get()
    }

    /// The current rows of a transfer, without those the user dismissed.
    pub fn rows(&self, id: &TransferId) -> Vec<FileRow> {
        self.job(id).map(|job| job.rows()).unwrap_or_default()
    }

    /// Over how many peer connections a transfer's chunks went.
    pub fn lanes(&self, id: &TransferId) -> usize {
        self.job(id).map_or(0, |job| job.lanes())
    }

    fn job(&self, id: &TransferId) -> Option<Rc<Job>> {
        self.inner.jobs.borrow().get(id).cloned()
    }

    fn nick_of(&self, peer: &PeerId) -> String {
        self.inner
            .nicks
            .borrow()
            .get(peer)
            .cloned()
            .unwrap_or_else(|| "the other user".to_owned())
    }

    fn peer_gone(&self, peer: &PeerId) {
        let nick = self.nick_of(peer);
        self.fail_with(peer, &TransferError::PeerGone(nick));
    }

    /// Interrupts every transfer with `peer` (see [`Self::interrupt`]).
    fn fail_with(&self, peer: &PeerId, error: &TransferError) {
        let jobs: Vec<Rc<Job>> = self
            .inner
            .jobs
            .borrow()
            .values()
            .filter(|job| &job.peer() == peer)
            .cloned()
            .collect();
        for job in jobs {
            self.interrupt(&job, error);
        }
    }

    /// The connection under `job` broke: a running transfer pauses, a paused one stays
    /// paused (a new connection that fails while it tries to go on is one attempt of many),
    /// and one not answered yet fails with `error`.
    fn interrupt(&self, job: &Job, error: &TransferError) {
        let transfer = job.transfer.borrow();
        if transfer.is_ended() || transfer.is_paused() {
            return;
        }
        let running = transfer.is_running();
        let id = transfer.id.clone();
        drop(transfer);
        if running {
            return self.pause(job, &error.to_string());
        }
        job.transfer.borrow_mut().fail(error);
        job.close();
        self.publish(job);
        (self.inner.events)(EngineEvent::OfferGone(id));
    }

    /// Ends a transfer with `error` on this side, tells the other side why and closes the
    /// channels: this side reads nothing more from them, so bytes still arriving would only
    /// pile up, and a task of the other side waiting for a message that now never comes wakes.
    fn fail(&self, job: &Job, error: &TransferError) {
        if job.transfer.borrow().is_ended() {
            return;
        }
        job.transfer.borrow_mut().fail(error);
        let me = self.inner.my_nick.borrow().clone();
        let _ = job.control().send(&TransferMessage::Failed {
            reason: error.for_peer(&me).to_string(),
        });
        job.close();
        self.publish(job);
    }

    /// A channel closed under a transfer that was not over: the connection broke, which
    /// pauses a running transfer; before the answer, the other side is gone.
    fn end_on_close(&self, job: &Job) {
        let peer = job.transfer.borrow().peer.clone();
        self.interrupt(job, &TransferError::PeerGone(peer));
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("me", &self.inner.me.borrow())
            .field("transfers", &self.inner.jobs.borrow().len())
            .finish_non_exhaustive()
    }
}
