//! The life of one transfer, on either side, as plain data: which file is being moved, how
//! many of its bytes have passed, its running SHA-256, and each file's status text.
//!
//! A row's progress is what the receiver has: the bytes it received, or, on the sender's side,
//! the bytes the receiver reported written ([`Transfer::receiver_wrote`]), not the bytes read
//! from the file, which run up to a window ahead.
//!
//! The web glue drives a [`Transfer`] with what happens on the data channel and reads back
//! the statuses; everything that decides "complete" or "failed" lives here, under native tests.

use std::fmt;

use ferry_protocol::{FileMeta, Sha256Hex, TransferId};
use sha2::{Digest, Sha256};

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
            Self::Waiting { .. } | Self::Sending | Self::Receiving | Self::Verifying
        )
    }

    /// Whether a file that said `before` and now says this is worth telling a screen-reader
    /// user: the receiver's answer to the offer, and the end of the file.
    pub fn is_news_after(&self, before: &Self) -> bool {
        self != before
            && (matches!(before, Self::Waiting { .. })
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
            Self::Complete => f.write_str("Complete"),
            Self::Declined => f.write_str("Declined"),
            Self::Cancelled => f.write_str("Cancelled"),
            Self::Failed(reason) => write!(f, "Failed: {reason}"),
        }
    }
}

/// Which way a transfer goes, seen from this browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// This browser sends.
    Outgoing,
    /// This browser receives.
    Incoming,
}

/// Why a transfer failed; the text follows "Failed: " in the row and in
/// [`ferry_protocol::TransferMessage::Failed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The received bytes do not match the announced size or hash.
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
    /// The other browser reported a failure; this is its reason.
    #[error("{0}")]
    Remote(String),
    /// This browser could not read or write a file.
    #[error("{0}")]
    Local(String),
}

/// One file of a transfer as a row shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProgress {
    /// Name, size and type as offered.
    pub meta: FileMeta,
    /// Bytes moved so far: received here, or, when sending, reported written by the receiver.
    pub done: u64,
    /// What the row says.
    pub status: Status,
}

/// One offer of files between this browser and one peer, from offer to its end.
#[derive(Clone, Debug)]
pub struct Transfer {
    /// Names the transfer in both browsers.
    pub id: TransferId,
    /// Which way the bytes go.
    pub direction: Direction,
    /// The other user's nick.
    pub peer: String,
    /// Every file of the offer, in order.
    pub files: Vec<FileProgress>,
    phase: Phase,
    hasher: Sha256,
    /// Bytes of the current file read (sender) or received (receiver), for its size check.
    passed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Offered,
    /// Bytes of file `current` are moving; `current == files.len()` once all have passed.
    Running {
        current: usize,
    },
    Ended,
}

impl Transfer {
    /// A transfer this browser offers to `peer`: every file waits for their answer.
    pub fn outgoing(id: TransferId, peer: &str, files: Vec<FileMeta>) -> Self {
        let status = Status::Waiting {
            peer: peer.to_owned(),
        };
        Self::new(id, Direction::Outgoing, peer, files, status)
    }

    /// A transfer `peer` offers to this browser, before this user answers.
    pub fn incoming(id: TransferId, peer: &str, files: Vec<FileMeta>) -> Self {
        Self::new(id, Direction::Incoming, peer, files, Status::Receiving)
    }

    fn new(
        id: TransferId,
        direction: Direction,
        peer: &str,
        files: Vec<FileMeta>,
        status: Status,
    ) -> Self {
        let files = files
            .into_iter()
            .map(|meta| FileProgress {
                meta,
                done: 0,
                status: status.clone(),
            })
            .collect();
        Self {
            id,
            direction,
            peer: peer.to_owned(),
            files,
            phase: Phase::Offered,
            hasher: Sha256::new(),
            passed: 0,
        }
    }

    /// The receiver accepted: bytes start to move.
    pub fn accept(&mut self) {
        if self.phase != Phase::Offered {
            return;
        }
        let status = match self.direction {
            Direction::Outgoing => Status::Sending,
            Direction::Incoming => Status::Receiving,
        };
        for file in &mut self.files {
            file.status = status.clone();
        }
        self.phase = Phase::Running { current: 0 };
        self.end_if_done();
    }

    /// The receiver declined.
    pub fn decline(&mut self) {
        if self.phase == Phase::Offered {
            self.settle(&Status::Declined);
        }
    }

    /// Someone cancelled: every unfinished file says "Cancelled".
    pub fn cancel(&mut self) {
        self.settle(&Status::Cancelled);
    }

    /// The transfer failed: every unfinished file says why.
    pub fn fail(&mut self, error: &TransferError) {
        self.settle(&Status::Failed(error.to_string()));
    }

    /// Whether the transfer has nothing more to do (complete, declined, cancelled or failed).
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Whether the receiver has answered and the transfer is not over.
    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// The index of the file whose bytes move now, if any.
    pub fn current(&self) -> Option<usize> {
        match self.phase {
            Phase::Running { current } if current < self.files.len() => Some(current),
            _ => None,
        }
    }

    /// Counts and hashes the next bytes of the current file.
    ///
    /// # Errors
    /// [`TransferError::Integrity`] when they run past the announced size, and
    /// [`TransferError::Protocol`] when no file is expecting bytes.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Result<usize, TransferError> {
        let index = self.current().ok_or_else(|| self.protocol_error())?;
        let file = &mut self.files[index];
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let passed = self.passed.saturating_add(len);
        if passed > file.meta.size {
            return Err(TransferError::Integrity);
        }
        self.passed = passed;
        if self.direction == Direction::Incoming {
            file.done = passed;
        }
        self.hasher.update(bytes);
        Ok(index)
    }

    /// Sender: the receiver reports `total` bytes of the transfer written, counted over the
    /// files in order; each file's progress becomes its share. Returns the last file whose
    /// progress changed. (The total is checked against what was sent by
    /// [`crate::flow::SendWindow::on_written`].)
    pub fn receiver_wrote(&mut self, total: u64) -> Option<usize> {
        let mut left = total;
        let mut changed = None;
        for (index, file) in self.files.iter_mut().enumerate() {
            let share = left.min(file.meta.size);
            left -= share;
            if file.done != share {
                file.done = share;
                changed = Some(index);
            }
        }
        changed
    }

    /// Sender: the current file's bytes are all handed to the channel. Returns its index and
    /// hash for [`ferry_protocol::TransferMessage::FileEnd`]; the file waits for the
    /// receiver's verdict.
    ///
    /// # Errors
    /// [`TransferError::Integrity`] when fewer bytes were read than the file's size (it
    /// changed on disk while being sent).
    pub fn finish_sent_file(&mut self) -> Result<(usize, Sha256Hex), TransferError> {
        let index = self.current().ok_or_else(|| self.protocol_error())?;
        let digest = self.take_digest();
        let passed = std::mem::take(&mut self.passed);
        let file = &mut self.files[index];
        if passed != file.meta.size {
            return Err(TransferError::Integrity);
        }
        file.status = Status::Verifying;
        self.phase = Phase::Running { current: index + 1 };
        Ok((index, digest))
    }

    /// Receiver: the sender says file `index` ended with hash `sha256`. Checks the size and the
    /// hash; on success the file is "Verifying" until [`Self::complete_file`] (after the sink
    /// has flushed it).
    ///
    /// # Errors
    /// [`TransferError::Integrity`] on a short file or a hash mismatch;
    /// [`TransferError::Protocol`] when `index` is not the current file.
    pub fn end_received_file(
        &mut self,
        index: u32,
        sha256: &Sha256Hex,
    ) -> Result<usize, TransferError> {
        let current = self.current().ok_or_else(|| self.protocol_error())?;
        if usize::try_from(index).ok() != Some(current) {
            return Err(self.protocol_error());
        }
        let digest = self.take_digest();
        let passed = std::mem::take(&mut self.passed);
        let file = &mut self.files[current];
        if passed != file.meta.size || &digest != sha256 {
            return Err(TransferError::Integrity);
        }
        file.status = Status::Verifying;
        self.phase = Phase::Running {
            current: current + 1,
        };
        Ok(current)
    }

    /// File `index` is verified (sender: the receiver said so; receiver: its sink is flushed).
    ///
    /// # Errors
    /// [`TransferError::Protocol`] when that file was not waiting for its verdict.
    pub fn complete_file(&mut self, index: u32) -> Result<usize, TransferError> {
        let index = usize::try_from(index).map_err(|_| self.protocol_error())?;
        match self.files.get_mut(index) {
            Some(file) if file.status == Status::Verifying => {
                file.status = Status::Complete;
                self.end_if_done();
                Ok(index)
            }
            _ => Err(self.protocol_error()),
        }
    }

    /// The blame for a message that does not fit the protocol at this point.
    pub fn protocol_error(&self) -> TransferError {
        TransferError::Protocol(self.peer.clone())
    }

    fn take_digest(&mut self) -> Sha256Hex {
        Sha256Hex::from_digest(std::mem::take(&mut self.hasher).finalize().into())
    }

    fn end_if_done(&mut self) {
        if self
            .files
            .iter()
            .all(|file| file.status == Status::Complete)
        {
            self.phase = Phase::Ended;
        }
    }

    fn settle(&mut self, status: &Status) {
        if self.phase == Phase::Ended {
            return;
        }
        for file in &mut self.files {
            if file.status.is_running() {
                file.status = status.clone();
            }
        }
        self.phase = Phase::Ended;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunking::chunk_ranges;

    const CHUNK: usize = 16;

    fn meta(name: &str, size: u64) -> FileMeta {
        FileMeta {
            name: name.into(),
            size,
            mime: String::new(),
        }
    }

    fn id() -> TransferId {
        TransferId::from_random_bytes([1; 16])
    }

    /// Deterministic bytes that differ from chunk to chunk.
    fn content(size: u64) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn statuses(transfer: &Transfer) -> Vec<String> {
        transfer
            .files
            .iter()
            .map(|file| file.status.to_string())
            .collect()
    }

    /// Sends `files` from a sender machine to a receiver machine chunk by chunk, the way the
    /// glue does, letting `tamper` alter each chunk in flight. Returns both ends.
    fn run(files: &[u64], tamper: impl Fn(usize, &mut Vec<u8>)) -> (Transfer, Transfer) {
        let metas: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, &size)| meta(&format!("f{i}"), size))
            .collect();
        let mut sender = Transfer::outgoing(id(), "bo", metas.clone());
        let mut receiver = Transfer::incoming(id(), "ana", metas);
        assert_eq!(statuses(&sender), vec!["Waiting for bo"; files.len()]);
        receiver.accept();
        sender.accept();
        let mut chunk_number = 0;
        for &size in files {
            let bytes = content(size);
            for range in chunk_ranges(size, CHUNK) {
                let mut chunk = bytes[range.start as usize..range.end as usize].to_vec();
                sender.add_bytes(&chunk).unwrap();
                tamper(chunk_number, &mut chunk);
                chunk_number += 1;
                if let Err(error) = receiver.add_bytes(&chunk) {
                    receiver.fail(&error);
                    return (sender, receiver);
                }
            }
            let (index, hash) = sender.finish_sent_file().unwrap();
            let written: u64 = receiver.files.iter().map(|file| file.done).sum();
            sender.receiver_wrote(written);
            match receiver.end_received_file(index as u32, &hash) {
                Ok(index) => {
                    receiver.complete_file(index as u32).unwrap();
                    sender.complete_file(index as u32).unwrap();
                }
                Err(error) => {
                    receiver.fail(&error);
                    sender.fail(&TransferError::Remote(error.to_string()));
                    return (sender, receiver);
                }
            }
        }
        (sender, receiver)
    }

    #[test]
    fn sizes_that_matter_arrive_complete() {
        for size in [0, 1, CHUNK as u64 - 1, CHUNK as u64, 3 * CHUNK as u64, 1000] {
            let (sender, receiver) = run(&[size], |_, _| {});
            assert_eq!(statuses(&sender), ["Complete"], "size {size}");
            assert_eq!(statuses(&receiver), ["Complete"], "size {size}");
            assert_eq!(receiver.files[0].done, size);
            assert_eq!(sender.files[0].done, size);
            assert!(sender.is_ended() && receiver.is_ended());
        }
    }

    #[test]
    fn the_sender_shows_what_the_receiver_wrote_not_what_it_read() {
        let mut sender =
            Transfer::outgoing(id(), "bo", vec![meta("a", 10), meta("b", 0), meta("c", 5)]);
        sender.accept();
        sender.add_bytes(&content(10)).unwrap();
        assert_eq!(sender.files[0].done, 0, "read is not received");
        assert_eq!(sender.receiver_wrote(4), Some(0));
        assert_eq!(sender.files[0].done, 4);
        sender.finish_sent_file().unwrap();
        sender.finish_sent_file().unwrap();
        sender.add_bytes(&content(5)).unwrap();
        assert_eq!(sender.receiver_wrote(4), None, "no news");
        assert_eq!(sender.receiver_wrote(12), Some(2));
        let done: Vec<u64> = sender.files.iter().map(|file| file.done).collect();
        assert_eq!(done, [10, 0, 2]);
        assert_eq!(sender.receiver_wrote(15), Some(2));
        assert_eq!(sender.files[2].done, 5);
    }

    #[test]
    fn several_files_one_after_another() {
        let (sender, receiver) = run(&[0, 1, 2 * CHUNK as u64, 100], |_, _| {});
        assert_eq!(statuses(&sender), vec!["Complete"; 4]);
        assert_eq!(statuses(&receiver), vec!["Complete"; 4]);
    }

    #[test]
    fn a_corrupted_chunk_fails_the_integrity_check() {
        let (sender, receiver) = run(&[3 * CHUNK as u64], |n, chunk| {
            if n == 1 {
                chunk[3] ^= 0x40;
            }
        });
        assert_eq!(statuses(&receiver), ["Failed: integrity check failed"]);
        assert_eq!(statuses(&sender), ["Failed: integrity check failed"]);
        assert!(receiver.is_ended());
    }

    #[test]
    fn too_many_bytes_fail_at_once() {
        let (_, receiver) = run(&[10, 5], |n, chunk| {
            if n == 0 {
                chunk.push(0);
            }
        });
        assert_eq!(
            statuses(&receiver),
            [
                "Failed: integrity check failed",
                "Failed: integrity check failed"
            ]
        );
    }

    #[test]
    fn too_few_bytes_fail_at_the_end_marker() {
        let (_, receiver) = run(&[3 * CHUNK as u64], |n, chunk| {
            if n == 2 {
                chunk.pop();
            }
        });
        assert_eq!(statuses(&receiver), ["Failed: integrity check failed"]);
    }

    #[test]
    fn a_missing_chunk_fails_even_when_sizes_are_fooled() {
        let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 4)]);
        receiver.accept();
        receiver.add_bytes(b"abcd").unwrap();
        let wrong = Sha256Hex::from_digest(Sha256::digest(b"abce").into());
        assert_eq!(
            receiver.end_received_file(0, &wrong),
            Err(TransferError::Integrity)
        );
    }

    #[test]
    fn bytes_or_end_markers_out_of_place_are_protocol_errors() {
        let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 1)]);
        assert_eq!(
            receiver.add_bytes(b"x"),
            Err(TransferError::Protocol("ana".into()))
        );
        receiver.accept();
        let hash = Sha256Hex::from_digest([0; 32]);
        assert!(matches!(
            receiver.end_received_file(1, &hash),
            Err(TransferError::Protocol(_))
        ));
        assert!(receiver.complete_file(0).is_err());
        assert!(receiver.complete_file(7).is_err());
    }

    #[test]
    fn decline_and_cancel() {
        let mut declined = Transfer::outgoing(id(), "bo", vec![meta("a", 1), meta("b", 2)]);
        declined.decline();
        assert_eq!(statuses(&declined), ["Declined", "Declined"]);
        assert!(declined.is_ended());

        let mut cancelled = Transfer::outgoing(id(), "bo", vec![meta("a", 0), meta("b", 2)]);
        cancelled.accept();
        let (index, _) = cancelled.finish_sent_file().unwrap();
        cancelled.complete_file(index as u32).unwrap();
        cancelled.add_bytes(b"x").unwrap();
        cancelled.cancel();
        assert_eq!(statuses(&cancelled), ["Complete", "Cancelled"]);
        // Once ended, later news changes nothing.
        cancelled.fail(&TransferError::PeerGone("bo".into()));
        cancelled.decline();
        assert_eq!(statuses(&cancelled), ["Complete", "Cancelled"]);
    }

    #[test]
    fn a_vanished_peer_fails_what_is_unfinished() {
        let mut transfer = Transfer::outgoing(id(), "bo", vec![meta("a", 5), meta("b", 5)]);
        transfer.accept();
        transfer.add_bytes(b"hello").unwrap();
        transfer.finish_sent_file().unwrap();
        transfer.fail(&TransferError::PeerGone("bo".into()));
        assert_eq!(
            statuses(&transfer),
            ["Failed: bo disconnected", "Failed: bo disconnected"]
        );
    }

    #[test]
    fn an_offer_without_a_network_path_fails_saying_why() {
        let mut transfer = Transfer::outgoing(id(), "bo", vec![meta("a", 5)]);
        transfer.fail(&TransferError::NoPath {
            peer: "bo".into(),
            why: NoPath::RelayRefused,
        });
        assert_eq!(
            statuses(&transfer),
            ["Failed: no network path to bo — the relay refused Ferry's credentials"]
        );
    }

    #[test]
    fn status_texts() {
        assert_eq!(
            Status::Waiting { peer: "bo".into() }.to_string(),
            "Waiting for bo"
        );
        assert_eq!(Status::Failed("x".into()).to_string(), "Failed: x");
        assert!(Status::Verifying.is_running());
        assert!(!Status::Complete.is_running());
    }

    #[test]
    fn news_is_the_answer_and_the_end() {
        let waiting = Status::Waiting { peer: "bo".into() };
        assert!(Status::Sending.is_news_after(&waiting));
        assert!(Status::Declined.is_news_after(&waiting));
        assert!(Status::Complete.is_news_after(&Status::Verifying));
        assert!(Status::Cancelled.is_news_after(&Status::Receiving));
        assert!(!Status::Verifying.is_news_after(&Status::Sending));
        assert!(!Status::Sending.is_news_after(&Status::Sending));
        assert!(!Status::Cancelled.is_news_after(&Status::Complete));
    }
}
