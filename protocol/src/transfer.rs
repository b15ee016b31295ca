//! Messages between two browsers about one transfer, version 2.
//!
//! Control messages are JSON text on the transfer's own ordered, reliable `RTCDataChannel`,
//! labelled [`TRANSFER_CHANNEL_LABEL`]; file bytes are binary chunks ([`crate::chunk`]) that
//! carry their file and offset, so they may arrive in any order, on that channel or on a data
//! channel of another peer connection between the same two browsers
//! ([`DATA_CHANNEL_PREFIX`]), which is how a transfer is striped over several connections.
//!
//! The sender opens the channel and sends [`TransferMessage::Offer`] with its
//! [`TRANSFER_VERSION`]; after [`TransferMessage::Accept`] it reads each file in blocks of
//! [`BLOCK_SIZE`], hashes each block (BLAKE3: in wasm four times cheaper per byte than
//! SHA-256, and cheaper than the browsers' own SHA-256, which Chromium runs on the page's
//! thread), sends its chunks and then the block's digest
//! ([`TransferMessage::Block`]), and after a file's last block the file's digest
//! ([`TransferMessage::FileEnd`]: the digest of its block digests in order, a hash list). The
//! receiver checks each block as it completes, writes only checked blocks and says so
//! ([`TransferMessage::Stored`]), asks for a block that fails its check again
//! ([`TransferMessage::Resend`]), and answers each file with [`TransferMessage::FileVerified`]
//! or [`TransferMessage::Failed`]. Either side may send [`TransferMessage::Cancel`] at any time.
//!
//! A data channel cannot be paused, so the receiver paces the sender: the sender keeps at most
//! a window of bytes sent but not yet reported stored, so bytes waiting for a slow disk never
//! pile up in the receiver's memory beyond it. A block sent over a connection that failed is
//! sent again; chunks that arrive twice are the same bytes and are dropped.
//!
//! When the connection breaks mid-transfer, both sides keep what they have and the transfer is
//! paused. Once the two browsers reach each other again, the sender opens a new control channel
//! and asks to go on ([`TransferMessage::Resume`]); the receiver answers with what it holds
//! verified ([`TransferMessage::Resumed`]), and the sender sends the rest. A receiver that no
//! longer holds the transfer answers [`TransferMessage::Failed`]. A sender whose page was
//! reloaded first asks how far the transfer got ([`TransferMessage::Probe`], answered with
//! [`TransferMessage::Holds`]), so that a transfer that arrived whole as the page went needs
//! no file picked again; a receiver of version 4 leaves the probe unanswered, and the sender
//! then asks for the files as before.
//!
//! Each side checks the other's version in the offer and the accept; a browser running an
//! older or newer Ferry gets a clear refusal instead of a transfer that fails its checks.
//!
//! A control channel may carry a conversation instead of a transfer; its first message says
//! which. A text ([`TransferMessage::Text`], at most [`TEXT_LIMIT`] characters) is answered
//! [`TransferMessage::Delivered`]. A verification of the two devices' DTLS keys is a
//! commit-reveal exchange: the opener commits to a random nonce
//! ([`TransferMessage::VerifyCommit`]), the other side answers with its own nonce
//! ([`TransferMessage::VerifyNonce`]), the opener reveals its nonce
//! ([`TransferMessage::VerifyReveal`]), and each side derives a short code from both nonces
//! and both certificates' fingerprints as its own session descriptions show them. Each person
//! compares the two codes and says whether they match ([`TransferMessage::VerifyResult`]).
//! A server that swapped the fingerprints in the descriptions it relays cannot make the codes
//! agree except by luck: neither side's nonce is known before the other's is fixed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TransferId;
use crate::ids::{IdError, check_hex, to_hex};

/// The label of every transfer's control channel.
pub const TRANSFER_CHANNEL_LABEL: &str = "ferry-transfer";

/// The label of a channel that carries only chunks of one transfer, on another peer
/// connection: this prefix, then the transfer's id.
pub const DATA_CHANNEL_PREFIX: &str = "ferry-data:";

/// The version of this protocol. Version 1 sent each file's bytes in order without headers and
/// hashed whole files; version 2 sends chunks with their place and checks blocks; version 3
/// resumes a transfer after the connection broke; version 4 sends folders (a file's path, and
/// empty folders), which an older receiver would flatten without a word.
pub const TRANSFER_VERSION: u32 = 4;

/// The bytes of a block: what is hashed and checked as one, and asked for again when it fails.
pub const BLOCK_SIZE: u32 = 1024 * 1024;

/// The most characters a [`TransferMessage::Text`] may hold.
pub const TEXT_LIMIT: usize = 10_000;

/// The version of a peer that does not say: version 1 had no version field.
fn version_1() -> u32 {
    1
}

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
        /// The sender's [`TRANSFER_VERSION`]; 1 when missing.
        #[serde(default = "version_1")]
        version: u32,
        /// Folders of the offer that hold no file, as [`FileMeta::path`] writes folders, so a
        /// folder arrives with its empty subfolders too.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        empty_folders: Vec<String>,
    },
    /// Receiver → sender: send the files.
    Accept {
        /// The receiver's [`TRANSFER_VERSION`]; 1 when missing.
        #[serde(default = "version_1")]
        version: u32,
    },
    /// Receiver → sender: no, thanks. Ends the transfer.
    Decline,
    /// Sender → receiver: every chunk of block `index` of file `file` is sent; the block's
    /// bytes hash to `digest`.
    Block {
        /// Position of the file in the offer.
        file: u32,
        /// Position of the block in the file: its first byte is `index * BLOCK_SIZE`.
        index: u32,
        /// The BLAKE3 hash of the block's bytes.
        digest: DigestHex,
    },
    /// Sender → receiver: every block of the file at `index` is sent; the BLAKE3 hash of its
    /// block digests, in order, is `digest` (for an empty file, the hash of nothing).
    FileEnd {
        /// Position of the file in the offer.
        index: u32,
        /// The BLAKE3 hash over the file's block digests.
        digest: DigestHex,
    },
    /// Receiver → sender: block `block` of file `file` failed its check; send it again.
    Resend {
        /// Position of the file in the offer.
        file: u32,
        /// Position of the block in the file.
        block: u32,
    },
    /// Receiver → sender: block `block` of file `file` passed its check and is written.
    Stored {
        /// Position of the file in the offer.
        file: u32,
        /// Position of the block in the file.
        block: u32,
    },
    /// Receiver → sender: the file at `index` arrived whole and matched its hash.
    FileVerified {
        /// Position of the file in the offer.
        index: u32,
    },
    /// Sender → receiver, first message on a new control channel: go on with transfer `id`,
    /// which the connection's end interrupted.
    Resume {
        /// The transfer, as its offer named it.
        id: TransferId,
        /// The sender's [`TRANSFER_VERSION`].
        version: u32,
    },
    /// Receiver → sender, the answer to [`TransferMessage::Resume`]: what it holds, file by
    /// file in the offer's order. The sender sends every block not held, and each unfinished
    /// file's [`TransferMessage::FileEnd`] again.
    Resumed {
        /// One entry per offered file.
        files: Vec<HeldFile>,
    },
    /// Sender → receiver, first message on a new control channel from a sender's page that
    /// was reloaded, before its user picks the files again: how far did transfer `id` get?
    /// Changes nothing on the receiver's side; a transfer that arrived whole before the
    /// page went needs no file picked again.
    Probe {
        /// The transfer, as its offer named it.
        id: TransferId,
        /// The sender's [`TRANSFER_VERSION`].
        version: u32,
    },
    /// Receiver → sender, the answer to [`TransferMessage::Probe`]: what it holds, file by
    /// file in the offer's order (or [`TransferMessage::Cancel`] or
    /// [`TransferMessage::Failed`] when the transfer ended otherwise).
    Holds {
        /// One entry per offered file.
        files: Vec<HeldFile>,
    },
    /// Either way: the transfer failed; `reason` is shown to the user after "Failed: ".
    Failed {
        /// What went wrong, for people.
        reason: String,
    },
    /// Either way: the user cancelled. Ends the transfer; partial files are discarded.
    Cancel,
    /// First message on a control channel that carries no transfer: a text to read, at most
    /// [`TEXT_LIMIT`] characters.
    Text {
        /// The text, as its sender typed it.
        text: String,
    },
    /// The answer to [`TransferMessage::Text`]: it arrived and is shown.
    Delivered,
    /// First message on a control channel that carries nothing else, answered the same: it
    /// brings the connection up so each side sees which device the other is on.
    Hello,
    /// First message on a control channel that carries no transfer: the opener asks to
    /// verify the two devices and commits to its nonce.
    VerifyCommit {
        /// The SHA-256 hash of the opener's nonce, as the app's verification core makes it.
        commitment: DigestHex,
    },
    /// The answer to [`TransferMessage::VerifyCommit`]: the other side's own random nonce.
    VerifyNonce {
        /// 32 random bytes.
        nonce: DigestHex,
    },
    /// The opener's answer to [`TransferMessage::VerifyNonce`]: the nonce it committed to.
    VerifyReveal {
        /// The 32 bytes whose hash was the commitment.
        nonce: DigestHex,
    },
    /// Either way, after the code is shown: this person compared the two codes and says they
    /// match, or not.
    VerifyResult {
        /// The codes match.
        matched: bool,
    },
    /// Either way: a piece of a control message too long for one data-channel message (an
    /// offer of thousands of files, or the answer to resuming it); the pieces' texts, joined,
    /// are the message ([`crate::pieces`]).
    Piece {
        /// This piece of the message's JSON text.
        text: String,
        /// Whether this is the last piece.
        last: bool,
    },
}

/// One offered file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file's name on the sender's side, without any folder.
    pub name: String,
    /// The folder the file sits in, relative to what the sender chose, its parts joined by
    /// `/` ("Holiday/day 1"); empty for a file chosen on its own. The receiver recreates the
    /// folders, and refuses an offer whose paths would leave them (`..`, `/etc`, `C:`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its media type as the browser reported it; empty when unknown.
    #[serde(default)]
    pub mime: String,
}

/// What a receiver holds of one file when a transfer resumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldFile {
    /// The file arrived whole and was verified.
    pub complete: bool,
    /// The blocks checked and written, as half-open ranges of block indexes `[start, end)`,
    /// in increasing order.
    pub blocks: Vec<[u32; 2]>,
    /// The BLAKE3 hash of those blocks' digests, in order: the sender checks it against its
    /// own, so a file that changed in between is noticed before any byte is added to it.
    pub digest: DigestHex,
}

/// A 32-byte digest (BLAKE3, in version 2) as 64 lowercase hexadecimal digits.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DigestHex(String);

impl DigestHex {
    /// Encodes a finished digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(to_hex(&digest))
    }

    /// The digest's bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(self.0.as_bytes().chunks(2)) {
            // The constructor let only lowercase hexadecimal digits in.
            let digit = |c: u8| {
                if c.is_ascii_digit() {
                    c - b'0'
                } else {
                    c - b'a' + 10
                }
            };
            *byte = digit(pair[0]) << 4 | digit(pair[1]);
        }
        bytes
    }

    /// The hexadecimal form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DigestHex {
    type Error = IdError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        check_hex(&raw, 64)?;
        Ok(Self(raw))
    }
}

impl From<DigestHex> for String {
    fn from(hash: DigestHex) -> Self {
        hash.0
    }
}

impl fmt::Debug for DigestHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestHex({})", self.0)
    }
}
