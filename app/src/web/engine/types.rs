//! What the engine is configured with, and what it tells the views: its settings, the offers
//! that wait for an answer, and its events.

use std::rc::Rc;

use ferry_protocol::{FileMeta, PeerId, SignalPayload, TransferId};

use crate::core::flow::WINDOW;
use crate::core::paths::{has_folders, top_folder};
use crate::core::rows::FileRow;
use crate::core::stripes::Lanes;
use crate::web::channel::HIGH_WATER;

/// Where outgoing signals go: to the server, or straight to another engine in a test; the
/// last argument is the lane (which peer connection between the two browsers).
pub type SignalSink = Rc<dyn Fn(PeerId, SignalPayload, u32)>;

/// Settings that differ between the app and tests.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Hand verified files to the browser as downloads at once (the app); tests read them
    /// with [`Engine::received_file`] instead.
    pub auto_download: bool,
    /// A channel takes no more chunks while more than this many bytes are queued on it.
    pub high_water: u32,
    /// Sending waits while more than this many bytes are sent for blocks not yet stored.
    pub window: u64,
    /// How many peer connections a transfer runs over.
    pub lanes: Lanes,
    /// Send each block's chunks last to first, so they arrive out of order (tests).
    pub reverse_chunks: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            auto_download: true,
            high_water: HIGH_WATER,
            window: WINDOW,
            lanes: Lanes::default(),
            reverse_chunks: false,
        }
    }
}

/// An offer waiting for this user's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingOffer {
    /// The transfer.
    pub id: TransferId,
    /// The sender's nick.
    pub from: String,
    /// What is on offer, with safe names and folders.
    pub files: Vec<FileMeta>,
    /// The offer's folders that hold no file.
    pub empty_folders: Vec<String>,
    /// Files can only be kept in memory here; [`Self::memory_limit`] applies.
    pub memory_only: bool,
    /// The most bytes an offer may hold when kept in memory.
    pub memory_limit: u64,
    /// How many more bytes the browser's private storage takes, where the browser says.
    pub room: Option<u64>,
}

impl IncomingOffer {
    /// The bytes on offer.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    /// The one folder the offer is, if it is one.
    pub fn folder(&self) -> Option<String> {
        top_folder(self.paths())
    }

    /// Whether the offer holds folders, to be written as a tree or a zip.
    pub fn has_folders(&self) -> bool {
        has_folders(self.paths())
    }

    /// The files' folders, then the empty folders.
    fn paths(&self) -> impl Iterator<Item = &str> {
        let files = self.files.iter().map(|file| file.path.as_str());
        files.chain(self.empty_folders.iter().map(String::as_str))
    }

    /// Whether accepting is impossible because memory is the only sink and the offer is
    /// larger than allowed there.
    pub fn too_large(&self) -> bool {
        self.memory_only && self.total_size() > self.memory_limit
    }

    /// Whether the offer is larger than the browser's private storage can take: accepted
    /// into it, the transfer would fail when the disk fills. A place the user picks is on
    /// the disk itself, which the browser does not measure, so that way stays open.
    pub fn wont_fit(&self) -> bool {
        !self.memory_only && self.room.is_some_and(|room| self.total_size() > room)
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
