//! One transfer's state in the engine: its channels, its state machine, and what the rows
//! show beside it.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use ferry_protocol::PeerId;
use futures::channel::{mpsc, oneshot};

use super::RATE_WINDOW;
use super::storage::{Answer, Received};
use crate::core::rate::RateEstimator;
use crate::core::route::Route;
use crate::core::rows::{Around, FileRow, rows};
use crate::core::transfer::Transfer;
use crate::web::Notify;
use crate::web::channel::{Channel, ChannelEvent};

/// One transfer in flight or finished.
pub(super) struct Job {
    /// The other browser; its id changes when it comes back under a new session.
    peer: RefCell<PeerId>,
    /// The transfer's control channel, on the first lane; it carries chunks too. A resumed
    /// transfer has a new one.
    control: RefCell<Rc<Channel>>,
    /// Receiver: the control channel a sender opened to resume the paused transfer, until
    /// the receiving task takes it.
    pub(super) resumed_on: RefCell<Option<Rc<Channel>>>,
    /// Wakes a paused transfer's task: the other browser is back, its channel to resume
    /// arrived, or the transfer was discarded.
    pub(super) back: Notify,
    /// The channels for chunks on the other lanes, in the order they opened.
    pub(super) data: RefCell<Vec<Rc<Channel>>>,
    /// Wakes a sender waiting for room on any of the job's channels.
    pub(super) drained: Notify,
    /// Receiver: where the chunk channels' events go, to be read with the control channel's.
    pub(super) inbox: RefCell<Option<mpsc::UnboundedSender<ChannelEvent>>>,
    pub(super) transfer: RefCell<Transfer>,
    pub(super) rates: RefCell<Vec<RateEstimator>>,
    pub(super) last_published: Cell<f64>,
    /// The rows as last published, so that a publish sends only the rows that changed.
    pub(super) published: RefCell<Vec<Option<FileRow>>>,
    /// A publish is due once [`super::publish::PUBLISH_GAP`] has passed since the last.
    pub(super) publish_due: Cell<bool>,
    pub(super) answer: RefCell<Option<oneshot::Sender<Answer>>>,
    pub(super) received: RefCell<Vec<Option<Received>>>,
    /// A received folder's zip, once all its files are in.
    pub(super) zip: RefCell<Option<Received>>,
    pub(super) dismissed: RefCell<HashSet<usize>>,
    pub(super) route: Cell<Option<Route>>,
    /// Receiver: the files go to the private folder, so the transfer can outlive a reload.
    pub(super) resumable: Cell<bool>,
    /// Receiver: the gone tab whose private folder holds the files, when this page took the
    /// transfer over from it; `None` for this page's own folder.
    pub(super) folder: RefCell<Option<String>>,
}

impl Job {
    pub(super) fn new(
        peer: PeerId,
        control: Rc<Channel>,
        drained: Notify,
        transfer: Transfer,
    ) -> Self {
        let count = transfer.files.len();
        Self {
            peer: RefCell::new(peer),
            control: RefCell::new(control),
            resumed_on: RefCell::new(None),
            back: Notify::default(),
            data: RefCell::new(Vec::new()),
            drained,
            inbox: RefCell::new(None),
            transfer: RefCell::new(transfer),
            rates: RefCell::new(vec![RateEstimator::new(RATE_WINDOW); count]),
            last_published: Cell::new(0.0),
            published: RefCell::new(Vec::new()),
            publish_due: Cell::new(false),
            answer: RefCell::new(None),
            received: RefCell::new((0..count).map(|_| None).collect()),
            zip: RefCell::new(None),
            dismissed: RefCell::new(HashSet::new()),
            route: Cell::new(None),
            resumable: Cell::new(false),
            folder: RefCell::new(None),
        }
    }

    /// The other browser.
    pub(super) fn peer(&self) -> PeerId {
        self.peer.borrow().clone()
    }

    /// The other browser came back as `peer`.
    pub(super) fn set_peer(&self, peer: PeerId) {
        *self.peer.borrow_mut() = peer;
    }

    /// The transfer's control channel.
    pub(super) fn control(&self) -> Rc<Channel> {
        Rc::clone(&self.control.borrow())
    }

    /// Goes on over `control`, a new control channel, with no chunk channel yet.
    pub(super) fn set_control(&self, control: Rc<Channel>) {
        *self.control.borrow_mut() = control;
        self.data.borrow_mut().clear();
    }

    /// How many lanes carried the transfer: the control channel's and every chunk channel's.
    pub(super) fn lanes(&self) -> usize {
        1 + self.data.borrow().len()
    }

    /// Closes every channel of the transfer, which wakes its tasks.
    pub(super) fn close(&self) {
        self.control.borrow().close();
        for channel in self.data.borrow().iter() {
            channel.close();
        }
    }

    pub(super) fn rows(&self) -> Vec<FileRow> {
        // A transfer of folders is one row, which saves the folder's zip.
        let saved: Vec<bool> = if self.transfer.borrow().has_folders() {
            vec![self.zip.borrow().is_some()]
        } else {
            self.received.borrow().iter().map(Option::is_some).collect()
        };
        rows(
            &self.transfer.borrow(),
            Around {
                rates: &self.rates.borrow(),
                saved: &saved,
                dismissed: &self.dismissed.borrow(),
                route: self.route.get(),
                lanes: self.lanes(),
            },
        )
    }
}
