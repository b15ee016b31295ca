//! What the engine is configured with, and what it tells the views: its settings and its
//! events (offers that wait for an answer among them, [`IncomingOffer`]).

use std::rc::Rc;

use ferry_protocol::{PeerId, SignalPayload, TransferId};

use crate::core::flow::WINDOW;
use crate::core::offer::IncomingOffer;
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
    /// How many incoming transfers another open tab of this browser holds: this page cannot
    /// take them up while that tab is open.
    HeldElsewhere(usize),
    /// A connection to `peer` shows which device they are on: the fingerprint of the
    /// certificate it runs with. Sent when it is first seen or changed.
    Device {
        /// Whose device.
        peer: PeerId,
        /// Its certificate's fingerprint.
        fingerprint: String,
    },
    /// A text arrived from `from`.
    Text {
        /// Who sent it.
        from: PeerId,
        /// What they wrote.
        text: String,
    },
    /// A verification with `peer` moved on.
    Verify {
        /// With whom.
        peer: PeerId,
        /// What happened.
        step: VerifyStep,
    },
}

/// A step of a verification, as the views show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyStep {
    /// The other person asked to verify; the code follows.
    Asked,
    /// The code to compare, and the other device's fingerprint as this connection shows it
    /// (what is kept if both say the codes match).
    Code {
        /// The code's words.
        code: String,
        /// The other device's certificate fingerprint.
        fingerprint: String,
    },
    /// The other person compared the codes and says they match, or not.
    TheirAnswer(bool),
    /// It stopped before both answered; why, as a sentence.
    Stopped(String),
}

/// Receives engine events.
pub type EngineEvents = Rc<dyn Fn(EngineEvent)>;
