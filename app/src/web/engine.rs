//! The transfer engine: owns the peer links, runs one task per transfer, and publishes plain
//! rows and offers for the views. Signaling is injected — signals out through a callback,
//! signals in through [`Engine::handle_signal`] — so two engines can talk inside one page in a
//! test, through exactly the code the app runs.
//!
//! Per transfer: the sender opens a data channel on the link to the receiver and sends the
//! offer; the receiver's task shows it and waits for the user; after "Accept" the sender reads
//! each file slice by slice, hashing as it goes, and the receiver writes each chunk to its
//! sink in arrival order, hashing too, and checks the hash at each file's end marker.
//!
//! Two limits keep memory flat on both sides: the sender waits while the channel's send queue
//! is above its high-water mark (the browser's `bufferedAmount`), and while a window of bytes
//! is sent but not yet reported written by the receiver's sink ([`crate::flow`]), so a disk
//! slower than the network slows the sender down instead of filling the receiver's memory.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use ferry_protocol::{FileMeta, IceServer, PeerId, SignalPayload, TransferId, TransferMessage};
use futures::channel::oneshot;
use futures::{FutureExt, select};
use js_sys::Uint8Array;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Blob, File};

use super::channel::{Channel, ChannelEvent, HIGH_WATER};
use super::files::{self, read_slice};
use super::peer::{IcePolicy, LinkEvent, LinkEvents, PeerLink, SignalOut};
use super::sink::{Finished, MEMORY_LIMIT, Opfs, Picked, Sink};
use super::{JsError, Notify, log, now_secs, random_bytes, sleep};
use crate::chunking::{chunk_ranges, chunk_size};
use crate::filename::{distinct, sanitize};
use crate::flow::{SendWindow, WINDOW, WriteReports};
use crate::rate::RateEstimator;
use crate::route::{NoPath, Route};
use crate::transfer::{Direction, Status, Transfer, TransferError};

/// How often a running transfer republishes its progress, in seconds.
const PROGRESS_INTERVAL: f64 = 0.2;

/// The window of the speed estimate, in seconds.
const RATE_WINDOW: f64 = 3.0;

/// How long a sender waits for the connection to the receiver before it gives up and says
/// there is no network path. ICE finds a path, relayed or not, within a few seconds when one
/// exists; a link that knows sooner (no candidates at all) reports at once.
const CONNECT_DEADLINE_MS: u32 = 20_000;

/// How much of a file the sender reads at once; each read is then sent as several chunks.
/// Fewer, larger reads cost less than one `Blob.slice` round trip per chunk.
const READ_SIZE: u64 = 2 * 1024 * 1024;

/// The receiver gathers chunks that are already waiting into writes of up to this size:
/// one write per chunk would wait on the file system 256 KiB at a time.
const WRITE_BATCH: u32 = 4 * 1024 * 1024;

/// Settings that differ between the app and tests.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Hand verified files to the browser as downloads at once (the app); tests read them
    /// with [`Engine::received_file`] instead.
    pub auto_download: bool,
    /// Sending waits while more than this many bytes are queued on a channel.
    pub high_water: u32,
    /// Sending waits while more than this many bytes are sent but not yet reported written by
    /// the receiver ([`crate::flow::SendWindow`]).
    pub window: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            auto_download: true,
            high_water: HIGH_WATER,
            window: WINDOW,
        }
    }
}

/// One file of one transfer, as a row shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileRow {
    /// Unique per row: transfer id and file index.
    pub key: String,
    /// The transfer it belongs to.
    pub transfer: TransferId,
    /// Its position in the offer.
    pub index: usize,
    /// Which way it goes.
    pub direction: Direction,
    /// The other user's nick.
    pub peer: String,
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes moved so far.
    pub done: u64,
    /// What the row says.
    pub status: Status,
    /// Current speed, while moving.
    pub bytes_per_sec: Option<f64>,
    /// Estimated seconds left, while moving.
    pub seconds_left: Option<f64>,
    /// Whether a "Save NAME" button can offer the file again.
    pub can_save: bool,
    /// How the bytes travel, once the connection is up.
    pub route: Option<Route>,
}

/// An offer waiting for this user's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingOffer {
    /// The transfer.
    pub id: TransferId,
    /// The sender's nick.
    pub from: String,
    /// What is on offer.
    pub files: Vec<FileMeta>,
    /// Files can only be kept in memory here; [`Self::memory_limit`] applies.
    pub memory_only: bool,
    /// The most bytes an offer may hold when kept in memory.
    pub memory_limit: u64,
}

impl IncomingOffer {
    /// The bytes on offer.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    /// Whether accepting is impossible because memory is the only sink and the offer is
    /// larger than allowed there.
    pub fn too_large(&self) -> bool {
        self.memory_only && self.total_size() > self.memory_limit
    }
}

/// What the engine tells the views.
#[derive(Clone, Debug)]
pub enum EngineEvent {
    /// These rows of one transfer changed (insert or replace by key).
    Rows(Vec<FileRow>),
    /// An offer asks for an answer.
    Offer(IncomingOffer),
    /// An offer no longer needs an answer (answered, or withdrawn by the sender).
    OfferGone(TransferId),
    /// A row was dismissed; the key of the row.
    Removed(String),
}

/// Receives engine events.
pub type EngineEvents = Rc<dyn Fn(EngineEvent)>;

/// The user's answer to an offer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Receive into private storage and hand each file over as a download.
    Download,
    /// Receive straight into what the user picked.
    SaveTo(Picked),
    /// No, thanks.
    Decline,
}

/// The engine; cheap to clone, all clones are the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Rc<Inner>,
}

struct Inner {
    config: EngineConfig,
    out: SignalOut,
    events: EngineEvents,
    me: RefCell<Option<PeerId>>,
    ice: RefCell<IceSettings>,
    nicks: RefCell<HashMap<PeerId, String>>,
    links: RefCell<HashMap<PeerId, Rc<PeerLink>>>,
    jobs: RefCell<HashMap<TransferId, Rc<Job>>>,
    storage: RefCell<Storage>,
    tab: String,
    backpressure_waits: Cell<u64>,
    most_in_flight: Cell<u64>,
}

enum Storage {
    Unknown,
    Known(Option<Opfs>),
}

/// What new peer connections are configured with.
#[derive(Default)]
struct IceSettings {
    servers: Vec<IceServer>,
    /// The server asks for relayed connections only.
    server_relay_only: bool,
    /// This user asked to hide their address.
    hide_ip: bool,
}

impl IceSettings {
    fn policy(&self) -> IcePolicy {
        IcePolicy {
            servers: self.servers.clone(),
            relay_only: self.server_relay_only || self.hide_ip,
        }
    }
}

/// One transfer in flight or finished.
struct Job {
    peer: PeerId,
    channel: Rc<Channel>,
    transfer: RefCell<Transfer>,
    route: Cell<Option<Route>>,
    rates: RefCell<Vec<RateEstimator>>,
    last_published: Cell<f64>,
    answer: RefCell<Option<oneshot::Sender<Answer>>>,
    received: RefCell<Vec<Option<Received>>>,
    dismissed: RefCell<HashSet<usize>>,
}

/// A verified file kept for "Save NAME".
struct Received {
    blob: Blob,
    url: String,
    name: String,
    entry: Option<String>,
}

impl Engine {
    /// An engine whose signals go to `out` and whose news goes to `events`.
    pub fn new(config: EngineConfig, out: SignalOut, events: EngineEvents) -> Self {
        let tab = super::hex(&random_bytes::<8>());
        Self {
            inner: Rc::new(Inner {
                config,
                out,
                events,
                me: RefCell::new(None),
                ice: RefCell::new(IceSettings::default()),
                nicks: RefCell::new(HashMap::new()),
                links: RefCell::new(HashMap::new()),
                jobs: RefCell::new(HashMap::new()),
                storage: RefCell::new(Storage::Unknown),
                tab,
                backpressure_waits: Cell::new(0),
                most_in_flight: Cell::new(0),
            }),
        }
    }

    /// Sets this user's id (from the server's welcome), the ICE servers for new links and
    /// whether the server wants them relayed only.
    pub fn set_identity(&self, me: PeerId, ice_servers: Vec<IceServer>, relay_only: bool) {
        *self.inner.me.borrow_mut() = Some(me);
        let mut ice = self.inner.ice.borrow_mut();
        ice.server_relay_only = relay_only;
        ice.servers = ice_servers;
    }

    /// Applies fresh TURN credentials to every open link and keeps them for new ones.
    pub fn set_ice_servers(&self, ice_servers: Vec<IceServer>) {
        for link in self.inner.links.borrow().values() {
            link.set_ice_servers(&ice_servers);
        }
        self.inner.ice.borrow_mut().servers = ice_servers;
    }

    /// Whether new links use relayed candidates only, so peers do not learn this user's
    /// address; links that exist keep how they were made.
    pub fn set_hide_ip(&self, hide: bool) {
        self.inner.ice.borrow_mut().hide_ip = hide;
    }

    /// Remembers how a peer is called, for status texts.
    pub fn set_nick(&self, peer: &PeerId, nick: &str) {
        self.inner
            .nicks
            .borrow_mut()
            .insert(peer.clone(), nick.to_owned());
    }

    /// Applies a signal relayed from `from`.
    pub fn handle_signal(&self, from: PeerId, from_nick: &str, payload: SignalPayload) {
        self.set_nick(&from, from_nick);
        match self.link(&from) {
            Ok(link) => link.signal(payload),
            Err(error) => log(&format!("no connection to {from_nick}: {error}")),
        }
    }

    /// The peer left the server: fail what is running with them and drop the link.
    pub fn peer_left(&self, peer: &PeerId) {
        self.peer_gone(peer);
        self.inner.links.borrow_mut().remove(peer);
    }

    /// Opens the private storage (and clears what closed tabs left) ahead of the first
    /// transfer.
    pub async fn prepare_storage(&self) {
        let _ = self.opfs().await;
    }

    /// Offers `files` to `to`; returns the new transfer's id.
    ///
    /// # Errors
    /// When there is no identity yet or the browser refuses a peer connection.
    pub fn send_files(&self, to: &PeerId, files: Vec<File>) -> Result<TransferId, JsError> {
        let link = self.link(to)?;
        let id = TransferId::from_random_bytes(random_bytes());
        let metas: Vec<FileMeta> = files.iter().map(files::describe).collect();
        let nick = self.nick_of(to);
        let channel = Rc::new(Channel::new(
            link.open_channel(),
            self.inner.config.high_water,
        ));
        let job = Rc::new(Job::new(
            to.clone(),
            Rc::clone(&channel),
            Transfer::outgoing(id.clone(), &nick, metas),
        ));
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        self.publish(&job);
        let engine = self.clone();
        spawn_local(async move {
            engine.run_outgoing(&job, &link, &files).await;
            engine.publish(&job);
        });
        Ok(id)
    }

    /// Answers an offer.
    pub fn answer(&self, id: &TransferId, answer: Answer) {
        if let Some(job) = self.job(id)
            && let Some(sender) = job.answer.borrow_mut().take()
        {
            let _ = sender.send(answer);
        }
    }

    /// Cancels a transfer from this side.
    pub fn cancel(&self, id: &TransferId) {
        let Some(job) = self.job(id) else {
            return;
        };
        if job.transfer.borrow().is_ended() {
            return;
        }
        let _ = job.channel.send_text(&encode(&TransferMessage::Cancel));
        job.transfer.borrow_mut().cancel();
        // Closing wakes the transfer's task wherever it waits; queued messages, the
        // cancellation included, still reach the other side first.
        job.channel.close();
        self.publish(&job);
        (self.inner.events)(EngineEvent::OfferGone(id.clone()));
    }

    /// Offers a received file as a download again.
    pub fn save_again(&self, id: &TransferId, index: usize) {
        let Some(job) = self.job(id) else {
            return;
        };
        if let Some(Some(received)) = job.received.borrow().get(index)
            && let Err(error) = files::download(&received.url, &received.name)
        {
            log(&error.to_string());
        }
    }

    /// Removes a finished file's row and deletes its private copy; the transfer is forgotten
    /// with its last row.
    pub fn dismiss(&self, id: &TransferId, index: usize) {
        let Some(job) = self.job(id) else {
            return;
        };
        let running = job
            .transfer
            .borrow()
            .files
            .get(index)
            .is_none_or(|file| file.status.is_running());
        if running || !job.dismissed.borrow_mut().insert(index) {
            return;
        }
        let received = job
            .received
            .borrow_mut()
            .get_mut(index)
            .and_then(Option::take);
        if job.dismissed.borrow().len() == job.transfer.borrow().files.len() {
            self.inner.jobs.borrow_mut().remove(id);
        }
        if let Some(file) = received {
            files::revoke(&file.url);
            if let Some(entry) = file.entry {
                let engine = self.clone();
                spawn_local(async move {
                    if let Some(opfs) = engine.opfs().await {
                        opfs.remove(&entry).await;
                    }
                });
            }
        }
        (self.inner.events)(EngineEvent::Removed(row_key(id, index)));
    }

    /// The page is going: closes every peer connection, so the other browsers see their
    /// transfers with this one end at once, and deletes this tab's private files.
    pub fn shutdown(&self) {
        self.forget_files();
        self.inner.links.borrow_mut().clear();
    }

    /// Deletes every private file this tab holds, at once.
    fn forget_files(&self) {
        let opfs = match &*self.inner.storage.borrow() {
            Storage::Known(Some(opfs)) => opfs.clone(),
            _ => return,
        };
        let entries: Vec<String> = self
            .inner
            .jobs
            .borrow()
            .values()
            .flat_map(|job| {
                job.received
                    .borrow()
                    .iter()
                    .flatten()
                    .filter_map(|file| file.entry.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        spawn_local(async move {
            for entry in entries {
                opfs.remove(&entry).await;
            }
        });
    }

    /// The verified bytes of a received file, while its row exists.
    pub fn received_file(&self, id: &TransferId, index: usize) -> Option<Blob> {
        let job = self.job(id)?;
        let received = job.received.borrow();
        received.get(index)?.as_ref().map(|file| file.blob.clone())
    }

    /// How many times sending has waited for a channel's queue to drain.
    pub fn backpressure_waits(&self) -> u64 {
        self.inner.backpressure_waits.get()
    }

    /// The most bytes any transfer from this engine had sent but not yet reported written by
    /// the receiver; never above [`EngineConfig::window`] (raised to
    /// [`crate::flow::REPORT_INTERVAL`] when smaller).
    pub fn most_in_flight(&self) -> u64 {
        self.inner.most_in_flight.get()
    }

    /// The current rows of a transfer, without those the user dismissed.
    pub fn rows(&self, id: &TransferId) -> Vec<FileRow> {
        self.job(id).map(|job| job.rows()).unwrap_or_default()
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

    async fn opfs(&self) -> Option<Opfs> {
        if let Storage::Known(opfs) = &*self.inner.storage.borrow() {
            return opfs.clone();
        }
        let opfs = match Opfs::open(&self.inner.tab).await {
            Ok(opfs) => opfs,
            Err(error) => {
                log(&format!("private storage unavailable: {error}"));
                None
            }
        };
        *self.inner.storage.borrow_mut() = Storage::Known(opfs.clone());
        opfs
    }

    /// The link to `peer`, created on first use and again when the last one died.
    fn link(&self, peer: &PeerId) -> Result<Rc<PeerLink>, JsError> {
        if let Some(link) = self.inner.links.borrow().get(peer)
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
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                let engine = Engine { inner };
                match event {
                    LinkEvent::Channel(channel) => engine.incoming(remote.clone(), channel),
                    LinkEvent::Gone | LinkEvent::NoPath(_) => {
                        match event {
                            LinkEvent::NoPath(why) => engine.unreachable(remote, why),
                            _ => engine.peer_gone(remote),
                        }
                        // Drop the dead link later: this runs inside one of its own callbacks,
                        // which must not be freed while it executes.
                        let remote = remote.clone();
                        spawn_local(async move {
                            let mut links = engine.inner.links.borrow_mut();
                            if links.get(&remote).is_some_and(|link| link.is_dead()) {
                                links.remove(&remote);
                            }
                        });
                    }
                }
            })
        };
        let policy = self.inner.ice.borrow().policy();
        let link = Rc::new(PeerLink::new(
            &me,
            peer.clone(),
            &policy,
            Rc::clone(&self.inner.out),
            events,
        )?);
        self.inner
            .links
            .borrow_mut()
            .insert(peer.clone(), Rc::clone(&link));
        Ok(link)
    }

    fn peer_gone(&self, peer: &PeerId) {
        let nick = self.nick_of(peer);
        self.fail_with(peer, &TransferError::PeerGone(nick));
    }

    /// No path to `peer` was found: what waits for them fails saying why.
    fn unreachable(&self, peer: &PeerId, why: NoPath) {
        let nick = self.nick_of(peer);
        self.fail_with(peer, &TransferError::NoPath { peer: nick, why });
    }

    /// Fails every unfinished transfer with `peer`.
    fn fail_with(&self, peer: &PeerId, error: &TransferError) {
        let jobs: Vec<(TransferId, Rc<Job>)> = self
            .inner
            .jobs
            .borrow()
            .iter()
            .filter(|(_, job)| &job.peer == peer)
            .map(|(id, job)| (id.clone(), Rc::clone(job)))
            .collect();
        for (id, job) in jobs {
            if job.transfer.borrow().is_ended() {
                continue;
            }
            job.transfer.borrow_mut().fail(error);
            job.channel.close();
            self.publish(&job);
            (self.inner.events)(EngineEvent::OfferGone(id));
        }
    }

    fn publish(&self, job: &Job) {
        job.last_published.set(now_secs());
        (self.inner.events)(EngineEvent::Rows(job.rows()));
    }

    /// Publishes progress at most every [`PROGRESS_INTERVAL`].
    fn progress(&self, job: &Job, index: usize) {
        let now = now_secs();
        let done = job.transfer.borrow().files[index].done;
        if let Some(rate) = job.rates.borrow_mut().get_mut(index) {
            rate.record(now, done);
        }
        if now - job.last_published.get() >= PROGRESS_INTERVAL {
            self.publish(job);
        }
    }

    /// Ends a transfer with `error` on this side, tells the other side why and closes the
    /// channel: this side reads nothing more from it, so bytes still arriving would only pile
    /// up, and a task of the other side waiting for a message that now never comes wakes.
    fn fail(&self, job: &Job, error: &TransferError) {
        if job.transfer.borrow().is_ended() {
            return;
        }
        job.transfer.borrow_mut().fail(error);
        let _ = job.channel.send_text(&encode(&TransferMessage::Failed {
            reason: error.to_string(),
        }));
        job.channel.close();
        self.publish(job);
    }

    async fn run_outgoing(&self, job: &Rc<Job>, link: &PeerLink, files: &[File]) {
        let gone = || TransferError::PeerGone(job.transfer.borrow().peer.clone());
        let mut deadline = Box::pin(sleep(CONNECT_DEADLINE_MS).fuse());
        loop {
            let event = select! {
                event = job.channel.next().fuse() => event,
                () = deadline => {
                    let peer = job.transfer.borrow().peer.clone();
                    let why = link.no_path();
                    return self.fail(job, &TransferError::NoPath { peer, why });
                }
            };
            match event {
                ChannelEvent::Open => break,
                ChannelEvent::Closed => return self.end_on_close(job),
                _ => {}
            }
        }
        self.show_route(job, link).await;
        let offer = TransferMessage::Offer {
            id: job.transfer.borrow().id.clone(),
            files: job
                .transfer
                .borrow()
                .files
                .iter()
                .map(|file| file.meta.clone())
                .collect(),
        };
        if job.channel.send_text(&encode(&offer)).is_err() {
            let error = gone();
            return job.transfer.borrow_mut().fail(&error);
        }
        match job.channel.next().await {
            ChannelEvent::Text(text) => match decode(&text) {
                Some(TransferMessage::Accept) => job.transfer.borrow_mut().accept(),
                Some(TransferMessage::Decline) => {
                    job.transfer.borrow_mut().decline();
                    return job.channel.close();
                }
                Some(TransferMessage::Cancel) => return job.transfer.borrow_mut().cancel(),
                Some(TransferMessage::Failed { reason }) => {
                    return job
                        .transfer
                        .borrow_mut()
                        .fail(&TransferError::Remote(reason));
                }
                _ => {
                    let error = job.transfer.borrow().protocol_error();
                    return self.fail(job, &error);
                }
            },
            ChannelEvent::Closed => return self.end_on_close(job),
            _ => {
                let error = job.transfer.borrow().protocol_error();
                return self.fail(job, &error);
            }
        }
        self.publish(job);
        let window = Rc::new(RefCell::new(SendWindow::new(self.inner.config.window)));
        let wrote = Notify::default();
        // From here the receiver's reports and verdicts arrive while bytes still go out.
        {
            let engine = self.clone();
            let job = Rc::clone(job);
            let window = Rc::clone(&window);
            let wrote = wrote.clone();
            spawn_local(async move { engine.read_verdicts(&job, &window, &wrote).await });
        }
        let chunk = chunk_size(link.max_message_size());
        for (index, file) in files.iter().enumerate() {
            let size = job.transfer.borrow().files[index].meta.size;
            for read in chunk_ranges(size, usize::try_from(READ_SIZE).unwrap_or(chunk)) {
                if job.transfer.borrow().is_ended() {
                    return;
                }
                let bytes = match read_slice(file, read.start, read.end).await {
                    Ok(bytes) => bytes,
                    Err(error) => return self.fail(job, &TransferError::Local(error.to_string())),
                };
                // The receiver may have ended the transfer while the slice was read; `fail`
                // then changes nothing.
                let added = job.transfer.borrow_mut().add_bytes(&bytes.to_vec());
                if let Err(error) = added {
                    return self.fail(job, &error);
                }
                for part in chunk_ranges(read.end - read.start, chunk) {
                    let len = part.end - part.start;
                    // Every report wakes this wait, and so does the transfer's end, since
                    // whatever ends it also closes the channel that `read_verdicts` reads.
                    while !window.borrow().may_send(len) && !job.transfer.borrow().is_ended() {
                        let _ = wrote.notified().await;
                    }
                    if job.transfer.borrow().is_ended() {
                        return;
                    }
                    // Offsets within one read are below READ_SIZE, so they fit in u32.
                    #[allow(clippy::cast_possible_truncation)]
                    let view = bytes.subarray(part.start as u32, part.end as u32);
                    match job.channel.send_bytes(&view).await {
                        Ok(waited) => {
                            let waits = &self.inner.backpressure_waits;
                            waits.set(waits.get() + u64::from(waited));
                            let mut window = window.borrow_mut();
                            window.on_sent(len);
                            let most = &self.inner.most_in_flight;
                            most.set(most.get().max(window.most_in_flight()));
                        }
                        Err(_) => {
                            if !job.transfer.borrow().is_ended() {
                                self.end_on_close(job);
                            }
                            return;
                        }
                    }
                }
            }
            if job.transfer.borrow().is_ended() {
                return;
            }
            let finished = job.transfer.borrow_mut().finish_sent_file();
            match finished {
                Ok((index, sha256)) => {
                    let index = u32::try_from(index).unwrap_or(u32::MAX);
                    let _ = job
                        .channel
                        .send_text(&encode(&TransferMessage::FileEnd { index, sha256 }));
                    self.publish(job);
                }
                Err(error) => return self.fail(job, &error),
            }
        }
    }

    /// Sender: reads the receiver's reports and verdicts until the transfer ends, waking the
    /// sending loop after each.
    async fn read_verdicts(&self, job: &Rc<Job>, window: &RefCell<SendWindow>, wrote: &Notify) {
        while !job.transfer.borrow().is_ended() {
            let event = job.channel.next().await;
            let message = match &event {
                ChannelEvent::Text(text) => decode(text),
                _ => None,
            };
            // Reports come every mebibyte; they publish progress at its own pace, not each.
            if let Some(TransferMessage::Written { bytes }) = message {
                self.receiver_wrote(job, window, bytes);
                wrote.notify_all();
                continue;
            }
            match event {
                ChannelEvent::Text(_) => {
                    let mut transfer = job.transfer.borrow_mut();
                    match message {
                        Some(TransferMessage::FileVerified { index }) => {
                            if let Err(error) = transfer.complete_file(index) {
                                drop(transfer);
                                self.fail(job, &error);
                            }
                        }
                        Some(TransferMessage::Cancel) => transfer.cancel(),
                        Some(TransferMessage::Failed { reason }) => {
                            transfer.fail(&TransferError::Remote(reason));
                        }
                        _ => {
                            let error = transfer.protocol_error();
                            drop(transfer);
                            self.fail(job, &error);
                        }
                    }
                }
                ChannelEvent::Closed => self.end_on_close(job),
                ChannelEvent::Binary(_) => {
                    let error = job.transfer.borrow().protocol_error();
                    self.fail(job, &error);
                }
                ChannelEvent::Open => {}
            }
            wrote.notify_all();
            self.publish(job);
        }
        // Every verdict is in (or the transfer failed): the channel has done its work.
        job.channel.close();
        wrote.notify_all();
        self.publish(job);
    }

    /// Sender: the receiver reports `bytes` of the transfer written; that opens the window and
    /// moves the progress. A report that cannot be true fails the transfer.
    fn receiver_wrote(&self, job: &Job, window: &RefCell<SendWindow>, bytes: u64) {
        let taken = window.borrow_mut().on_written(bytes);
        if let Err(error) = taken {
            log(&error.to_string());
            let error = job.transfer.borrow().protocol_error();
            return self.fail(job, &error);
        }
        let changed = job.transfer.borrow_mut().receiver_wrote(bytes);
        if let Some(index) = changed {
            self.progress(job, index);
        }
    }

    /// A channel closed under a transfer that was not over: the other side is gone.
    fn end_on_close(&self, job: &Job) {
        let peer = job.transfer.borrow().peer.clone();
        job.transfer
            .borrow_mut()
            .fail(&TransferError::PeerGone(peer));
        self.publish(job);
    }

    /// Reads how the link's bytes travel into the transfer's rows.
    async fn show_route(&self, job: &Job, link: &PeerLink) {
        job.route.set(link.route().await);
        self.publish(job);
    }

    /// Receiver: a new transfer channel from `peer`.
    fn incoming(&self, peer: PeerId, channel: web_sys::RtcDataChannel) {
        let channel = Rc::new(Channel::new(channel, self.inner.config.high_water));
        let engine = self.clone();
        spawn_local(async move { engine.run_incoming(peer, channel).await });
    }

    async fn run_incoming(&self, peer: PeerId, channel: Rc<Channel>) {
        let nick = self.nick_of(&peer);
        let (id, metas) = loop {
            match channel.next().await {
                ChannelEvent::Open => {}
                ChannelEvent::Text(text) => match decode(&text) {
                    Some(TransferMessage::Offer { id, files }) if !files.is_empty() => {
                        break (id, files);
                    }
                    _ => return,
                },
                ChannelEvent::Binary(_) | ChannelEvent::Closed => return,
            }
        };
        let names = distinct(metas.iter().map(|meta| sanitize(&meta.name)));
        let metas: Vec<FileMeta> = metas
            .into_iter()
            .zip(names)
            .map(|(meta, name)| FileMeta { name, ..meta })
            .collect();
        let (answer_sender, answer) = oneshot::channel();
        let job = Rc::new(Job::new(
            peer,
            Rc::clone(&channel),
            Transfer::incoming(id.clone(), &nick, metas.clone()),
        ));
        *job.answer.borrow_mut() = Some(answer_sender);
        if self.inner.jobs.borrow().contains_key(&id) {
            return;
        }
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        let link = self.inner.links.borrow().get(&job.peer).cloned();
        if let Some(link) = link {
            self.show_route(&job, &link).await;
        }
        let opfs = self.opfs().await;
        // The sender may have gone while the storage opened; then nothing is left to ask.
        if job.transfer.borrow().is_ended() {
            return;
        }
        let offer = IncomingOffer {
            id: id.clone(),
            from: nick,
            files: metas,
            memory_only: opfs.is_none(),
            memory_limit: MEMORY_LIMIT,
        };
        (self.inner.events)(EngineEvent::Offer(offer.clone()));

        let answer = select! {
            answer = answer.fuse() => answer.ok(),
            event = channel.next().fuse() => {
                // The sender withdrew (cancel or gone) before the user answered.
                if let ChannelEvent::Text(text) = event
                    && decode(&text) == Some(TransferMessage::Cancel)
                {
                    job.transfer.borrow_mut().cancel();
                } else {
                    self.end_on_close(&job);
                }
                None
            },
        };
        (self.inner.events)(EngineEvent::OfferGone(id.clone()));
        let target = match answer {
            Some(Answer::Decline) | None if job.transfer.borrow().is_ended() => None,
            Some(Answer::Decline) | None => {
                let _ = channel.send_text(&encode(&TransferMessage::Decline));
                job.transfer.borrow_mut().decline();
                None
            }
            Some(Answer::SaveTo(picked)) => Some(Some(picked)),
            Some(Answer::Download) if offer.too_large() => {
                let _ = channel.send_text(&encode(&TransferMessage::Decline));
                job.transfer.borrow_mut().decline();
                None
            }
            Some(Answer::Download) => Some(None),
        };
        let Some(picked) = target else {
            self.publish(&job);
            return;
        };
        job.transfer.borrow_mut().accept();
        let _ = channel.send_text(&encode(&TransferMessage::Accept));
        self.publish(&job);
        self.receive_files(&job, picked.as_ref(), opfs.as_ref())
            .await;
        self.publish(&job);
    }

    async fn receive_files(&self, job: &Rc<Job>, picked: Option<&Picked>, opfs: Option<&Opfs>) {
        let mut sink: Option<Sink> = None;
        // An event read while gathering chunks, to handle next.
        let mut held: Option<ChannelEvent> = None;
        let mut reports = WriteReports::default();
        loop {
            let current = job.transfer.borrow().current();
            if sink.is_none()
                && let Some(index) = current
            {
                match self.open_sink(job, index, picked, opfs).await {
                    Ok(opened) => sink = Some(opened),
                    Err(error) => {
                        self.fail(job, &TransferError::Local(error.to_string()));
                        break;
                    }
                }
            }
            if job.transfer.borrow().is_ended() {
                break;
            }
            let event = match held.take() {
                Some(event) => event,
                None => job.channel.next().await,
            };
            // A local cancel ends the transfer while this task waits; drop what follows.
            if job.transfer.borrow().is_ended() {
                break;
            }
            match event {
                ChannelEvent::Binary(first) => {
                    let (batch, next) = gather(&job.channel, first);
                    held = next;
                    let mut index = 0;
                    for bytes in &batch {
                        let added = job.transfer.borrow_mut().add_bytes(&bytes.to_vec());
                        match added {
                            Ok(current) => index = current,
                            Err(error) => {
                                self.fail(job, &error);
                                break;
                            }
                        }
                    }
                    if job.transfer.borrow().is_ended() {
                        break;
                    }
                    let Some(open) = sink.as_mut() else {
                        break;
                    };
                    let joined = concat(&batch);
                    if let Err(error) = open.write(&joined).await {
                        self.fail(job, &TransferError::Local(error.to_string()));
                        break;
                    }
                    if let Some(bytes) = reports.on_write(u64::from(joined.length())) {
                        report_written(&job.channel, bytes);
                    }
                    self.progress(job, index);
                }
                ChannelEvent::Text(text) => match decode(&text) {
                    Some(TransferMessage::FileEnd { index, sha256 }) => {
                        let ended = job.transfer.borrow_mut().end_received_file(index, &sha256);
                        let index = match ended {
                            Ok(index) => index,
                            Err(error) => {
                                self.fail(job, &error);
                                break;
                            }
                        };
                        // Every byte of the file is written by now (each write completes
                        // before the next event is read), so the sender's row can show them all.
                        if let Some(bytes) = reports.at_file_end() {
                            report_written(&job.channel, bytes);
                        }
                        self.publish(job);
                        let Some(open) = sink.take() else {
                            break;
                        };
                        let mime = job.transfer.borrow().files[index].meta.mime.clone();
                        let finished = open.finish(&mime).await;
                        // Cancelled, or cut off, while the file was flushed: its row says so, so
                        // it is not handed over. (A file written where the user chose stays
                        // there, whole and checked; the browser offers no way to delete it.)
                        if job.transfer.borrow().is_ended() {
                            if let Ok(Finished::Download {
                                entry: Some(entry), ..
                            }) = finished
                                && let Some(opfs) = opfs
                            {
                                opfs.remove(&entry).await;
                            }
                            break;
                        }
                        match finished {
                            Ok(finished) => self.keep(job, index, finished),
                            Err(error) => {
                                self.fail(job, &TransferError::Local(error.to_string()));
                                break;
                            }
                        }
                        let index = u32::try_from(index).unwrap_or(u32::MAX);
                        let completed = job.transfer.borrow_mut().complete_file(index);
                        if let Err(error) = completed {
                            log(&error.to_string());
                        }
                        let _ = job
                            .channel
                            .send_text(&encode(&TransferMessage::FileVerified { index }));
                        self.publish(job);
                    }
                    Some(TransferMessage::Cancel) => job.transfer.borrow_mut().cancel(),
                    Some(TransferMessage::Failed { reason }) => job
                        .transfer
                        .borrow_mut()
                        .fail(&TransferError::Remote(reason)),
                    _ => {
                        let error = job.transfer.borrow().protocol_error();
                        self.fail(job, &error);
                    }
                },
                ChannelEvent::Closed => self.end_on_close(job),
                ChannelEvent::Open => {}
            }
        }
        // A file cut short is never kept.
        if let Some(partial) = sink {
            partial.discard().await;
        }
    }

    async fn open_sink(
        &self,
        job: &Job,
        index: usize,
        picked: Option<&Picked>,
        opfs: Option<&Opfs>,
    ) -> Result<Sink, JsError> {
        let (name, size) = {
            let transfer = job.transfer.borrow();
            let meta = &transfer.files[index].meta;
            (meta.name.clone(), meta.size)
        };
        match (picked, opfs) {
            (Some(picked), _) => Sink::picked(picked, &name).await,
            (None, Some(opfs)) => {
                let entry = row_key(&job.transfer.borrow().id, index);
                Sink::private(opfs, &entry).await
            }
            (None, None) => Ok(Sink::memory(size)),
        }
    }

    /// Keeps a verified file for "Save NAME" and, in the app, downloads it at once.
    fn keep(&self, job: &Job, index: usize, finished: Finished) {
        let Finished::Download { blob, entry } = finished else {
            return;
        };
        let name = job.transfer.borrow().files[index].meta.name.clone();
        let url = match files::object_url(&blob) {
            Ok(url) => url,
            Err(error) => return log(&error.to_string()),
        };
        if self.inner.config.auto_download
            && let Err(error) = files::download(&url, &name)
        {
            log(&error.to_string());
        }
        let mut received = job.received.borrow_mut();
        if let Some(slot) = received.get_mut(index) {
            *slot = Some(Received {
                blob,
                url,
                name,
                entry,
            });
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("me", &self.inner.me.borrow())
            .field("links", &self.inner.links.borrow().len())
            .field("transfers", &self.inner.jobs.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Job {
    fn new(peer: PeerId, channel: Rc<Channel>, transfer: Transfer) -> Self {
        let count = transfer.files.len();
        Self {
            peer,
            channel,
            transfer: RefCell::new(transfer),
            route: Cell::new(None),
            rates: RefCell::new(vec![RateEstimator::new(RATE_WINDOW); count]),
            last_published: Cell::new(0.0),
            answer: RefCell::new(None),
            received: RefCell::new((0..count).map(|_| None).collect()),
            dismissed: RefCell::new(HashSet::new()),
        }
    }

    fn rows(&self) -> Vec<FileRow> {
        let transfer = self.transfer.borrow();
        let rates = self.rates.borrow();
        let received = self.received.borrow();
        let dismissed = self.dismissed.borrow();
        transfer
            .files
            .iter()
            .enumerate()
            // A dismissed row stays gone, even when a later file of its transfer moves on.
            .filter(|(index, _)| !dismissed.contains(index))
            .map(|(index, file)| {
                let moving = matches!(file.status, Status::Sending | Status::Receiving);
                let rate = rates.get(index).filter(|_| moving);
                FileRow {
                    key: row_key(&transfer.id, index),
                    transfer: transfer.id.clone(),
                    index,
                    direction: transfer.direction,
                    peer: transfer.peer.clone(),
                    name: file.meta.name.clone(),
                    size: file.meta.size,
                    done: file.done,
                    status: file.status.clone(),
                    bytes_per_sec: rate.and_then(RateEstimator::bytes_per_sec),
                    seconds_left: rate
                        .and_then(|rate| rate.seconds_left(file.meta.size - file.done)),
                    can_save: received.get(index).is_some_and(Option::is_some),
                    route: self.route.get(),
                }
            })
            .collect()
    }
}

/// Takes `first` and the chunks already queued behind it, up to [`WRITE_BATCH`] bytes; also
/// returns a non-chunk event met on the way.
fn gather(channel: &Channel, first: Uint8Array) -> (Vec<Uint8Array>, Option<ChannelEvent>) {
    let mut total = first.length();
    let mut batch = vec![first];
    while total < WRITE_BATCH {
        match channel.try_next() {
            Some(ChannelEvent::Binary(bytes)) => {
                total += bytes.length();
                batch.push(bytes);
            }
            Some(other) => return (batch, Some(other)),
            None => break,
        }
    }
    (batch, None)
}

/// Joins chunks into one array (a copy inside JavaScript, cheaper than a write per chunk).
fn concat(batch: &[Uint8Array]) -> Uint8Array {
    if let [only] = batch {
        return only.clone();
    }
    let joined = Uint8Array::new_with_length(batch.iter().map(Uint8Array::length).sum());
    let mut offset = 0;
    for bytes in batch {
        joined.set(bytes, offset);
        offset += bytes.length();
    }
    joined
}

/// Receiver: tells the sender that `bytes` bytes of the transfer are written. A failure to
/// send means the channel is closing, which the receiving loop hears of on its own.
fn report_written(channel: &Channel, bytes: u64) {
    let _ = channel.send_text(&encode(&TransferMessage::Written { bytes }));
}

/// The key of a file's row: its transfer and its position there.
fn row_key(id: &TransferId, index: usize) -> String {
    format!("{id}-{index}")
}

fn encode(message: &TransferMessage) -> String {
    serde_json::to_string(message).expect("transfer messages always serialize")
}

fn decode(text: &str) -> Option<TransferMessage> {
    serde_json::from_str(text).ok()
}
