//! Messages between two browsers about one transfer, on that transfer's own ordered, reliable
//! `RTCDataChannel`.
//!
//! Control messages are JSON text; file bytes are binary messages. The sender opens a channel
//! labelled [`TRANSFER_CHANNEL_LABEL`] per offer and sends [`TransferMessage::Offer`]; after
//! [`TransferMessage::Accept`] it sends each file in order as binary chunks followed by
//! [`TransferMessage::FileEnd`]. Because the channel is ordered, a binary message always
//! belongs to the file after the last `FileEnd` seen (or the first file), so chunks need no
//! header. The receiver answers each file with [`TransferMessage::FileVerified`] or
//! [`TransferMessage::Failed`]. Either side may send [`TransferMessage::Cancel`] at any time.
//!
//! A data channel cannot be paused, so the receiver paces the sender: it reports with
//! [`TransferMessage::Written`] how many bytes of the transfer its sink has taken, after every
//! mebibyte or so and at each file's end, and the sender keeps at most a window of bytes sent
//! but not yet reported written. Bytes waiting for a slow disk then never pile up in the
//! receiver's memory beyond that window, and the sender's progress shows what the receiver has.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TransferId;
use crate::ids::{IdError, check_hex, to_hex};

/// The label of every transfer's data channel.
pub const TRANSFER_CHANNEL_LABEL: &str = "ferry-transfer";

/// A control message on a transfer's data channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransferMessage {
    /// Sender → receiver, first message: the files on offer.
    Offer {
        /// Names this transfer in both browsers.
        id: TransferId,
        /// The files, in the order they will be sent.
        files: Vec<FileMeta>,
    },
    /// Receiver → sender: send the files.
    Accept,
    /// Receiver → sender: no, thanks. Ends the transfer.
    Decline,
    /// Sender → receiver: the file at `index` is complete; its bytes hash to `sha256`.
    FileEnd {
        /// Position of the file in the offer.
        index: u32,
        /// SHA-256 of the whole file.
        sha256: Sha256Hex,
    },
    /// Receiver → sender: the sink has taken `bytes` bytes of this transfer so far, counted
    /// over all its files in order; never less than an earlier report.
    Written {
        /// Bytes of the transfer whose writes to the sink have completed.
        bytes: u64,
    },
    /// Receiver → sender: the file at `index` arrived whole and matched its hash.
    FileVerified {
        /// Position of the file in the offer.
        index: u32,
    },
    /// Either way: the transfer failed; `reason` is shown to the user after "Failed: ".
    Failed {
        /// What went wrong, for people.
        reason: String,
    },
    /// Either way: the user cancelled. Ends the transfer; partial files are discarded.
    Cancel,
}

/// One offered file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file's name on the sender's side, without any folder.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its media type as the browser reported it; empty when unknown.
    #[serde(default)]
    pub mime: String,
}

/// A SHA-256 digest as 64 lowercase hexadecimal digits.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Encodes a finished digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(to_hex(&digest))
    }

    /// The hexadecimal form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = IdError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        check_hex(&raw, 64)?;
        Ok(Self(raw))
    }
}

impl From<Sha256Hex> for String {
    fn from(hash: Sha256Hex) -> Self {
        hash.0
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({})", self.0)
    }
}
