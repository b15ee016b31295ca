//! What a file row says, and why a transfer failed, in the words the user reads.

use std::fmt;

use crate::route::NoPath;

/// What a file row says, exactly as the user reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Offered, and the receiver has not answered yet.
    Waiting {
        /// The receiver's nick.
        peer: String,
    },
    /// This side is sending the file (or it is queued behind earlier files of the offer).
    Sending,
    /// This side is receiving the file (or it is queued behind earlier files of the offer).
    Receiving,
    /// All bytes have passed; the receiver is checking the hash.
    Verifying,
    /// The connection broke; the transfer goes on once both browsers reach each other again.
    Paused {
        /// The other user's nick.
        peer: String,
    },
    /// This page was reloaded while sending: the file must be picked again to go on.
    PickAgain {
        /// The file's name.
        name: String,
        /// The last file picked for it was another one (or it changed since).
        refused: bool,
    },
    /// The receiver has every byte and the hash matched.
    Complete,
    /// The receiver said no.
    Declined,
    /// Someone cancelled.
    Cancelled,
    /// Something went wrong; the text says what.
    Failed(String),
}

impl Status {
    /// Whether the file is still moving or waiting to; such a row offers "Cancel".
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            Self::Waiting { .. }
                | Self::Sending
                | Self::Receiving
                | Self::Verifying
                | Self::Paused { .. }
                | Self::PickAgain { .. }
        )
    }

    /// Whether a file that said `before` and now says this is worth telling a screen-reader
    /// user: the receiver's answer to the offer, a pause and its end, and the end of the file.
    pub fn is_news_after(&self, before: &Self) -> bool {
        let paused = |status: &Self| matches!(status, Self::Paused { .. } | Self::PickAgain { .. });
        self != before
            && (matches!(before, Self::Waiting { .. })
                || paused(self) != paused(before)
                || (before.is_running() && !self.is_running()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Waiting { peer } => write!(f, "Waiting for {peer}"),
            Self::Sending => f.write_str("Sending"),
            Self::Receiving => f.write_str("Receiving"),
            Self::Verifying => f.write_str("Verifying"),
            Self::Paused { peer } => write!(f, "Paused — waiting for {peer}"),
            Self::PickAgain {
                name,
                refused: false,
            } => write!(f, "Paused — pick {name} again to resume"),
            Self::PickAgain {
                name,
                refused: true,
            } => write!(
                f,
                "Paused — that is not the {name} that was being sent; pick it again to resume"
            ),
            Self::Complete => f.write_str("Complete"),
            Self::Declined => f.write_str("Declined"),
            Self::Cancelled => f.write_str("Cancelled"),
            Self::Failed(reason) => write!(f, "Failed: {reason}"),
        }
    }
}

/// Why a transfer failed; the text follows "Failed: " in the row and in
/// [`ferry_protocol::TransferMessage::Failed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The received file does not match its announced digest.
    #[error("integrity check failed")]
    Integrity,
    /// The other browser went away mid-transfer.
    #[error("{0} disconnected")]
    PeerGone(String),
    /// The two browsers found no network path to each other.
    #[error("no network path to {peer} — {why}")]
    NoPath {
        /// The other user's nick.
        peer: String,
        /// The likeliest reason.
        why: NoPath,
    },
    /// The other browser broke the transfer protocol.
    #[error("unexpected message from {0}")]
    Protocol(String),
    /// The other browser runs an older Ferry, which cannot take part in this transfer.
    #[error("{0}'s Ferry is older; ask them to reload the page")]
    OlderPeer(String),
    /// The other browser runs a newer Ferry.
    #[error("{0}'s Ferry is newer; reload this page to get it")]
    NewerPeer(String),
    /// The offer names a folder that cannot be recreated safely.
    #[error("refused: {0}")]
    UnsafePath(#[from] crate::paths::PathError),
    /// The other browser reported a failure; this is its reason.
    #[error("{0}")]
    Remote(String),
    /// This browser could not read or write a file.
    #[error("{0}")]
    Local(#[from] LocalError),
    /// What the receiver says it holds cannot be used to go on (another file was picked
    /// again, or the account is broken).
    #[error("{0}")]
    Resume(#[from] crate::resume::ResumeError),
}

/// Something this browser could not do with a file: what Ferry was doing, and what the
/// browser said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{doing}: {what}")]
pub struct LocalError {
    /// What Ferry was doing, e.g. "writing the file".
    pub doing: &'static str,
    /// What went wrong.
    pub what: String,
}

impl TransferError {
    /// The error as the other side should read it, where that differs: a version refusal
    /// names the one who should reload, which is `me` on the other side.
    pub fn for_peer(&self, me: &str) -> Self {
        match self {
            Self::OlderPeer(_) => Self::NewerPeer(me.to_owned()),
            Self::NewerPeer(_) => Self::OlderPeer(me.to_owned()),
            other => other.clone(),
        }
    }
}
