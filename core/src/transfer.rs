//! The life of one transfer, on either side, as plain data: each file's status text and
//! progress, the receiver's block-by-block record of each file, and how a transfer reacts to
//! what the other side says.
//!
//! A row's progress is what the receiver has checked and written: on the receiver's side its
//! verified bytes, on the sender's the bytes the receiver reported written
//! ([`Transfer::stored`]), not the bytes read from the file, which run up to a window
//! ahead.
//!
//! The web glue drives a [`Transfer`] with what happens on the data channels and reads back
//! the statuses; everything that decides "complete" or "failed" lives here, under native tests.

mod folders;
mod pausing;
mod status;

use ferry_protocol::{DigestHex, FileMeta, TRANSFER_VERSION, TransferId, TransferMessage};

pub use self::pausing::no_longer_held;
pub use self::status::{LocalError, Status, TransferError};
use crate::blocks::{Assembly, Next, Verdict};
use crate::paths::has_folders;

/// Which way a transfer goes, seen from this browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// This browser sends.
    Outgoing,
    /// This browser receives.
    Incoming,
}

/// One file of a transfer as a row shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProgress {
    /// Name, size and type as offered.
    pub meta: FileMeta,
    /// Bytes checked and written: here, or, when sending, as the receiver reported.
    pub done: u64,
    /// What the row says.
    pub status: Status,
    /// The file's digest (BLAKE3 over its block digests), once it is known: sent, or
    /// checked on arrival.
    pub digest: Option<DigestHex>,
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
    /// The offer's folders that hold no file ([`FileMeta::path`]'s form).
    empty_folders: Vec<String>,
    /// Whether the offer holds folders: asked for every block and row, so known once.
    folders: bool,
    /// The receiver's record of each file's blocks (empty on the sender's side).
    assemblies: Vec<Assembly>,
    /// The digest each file's sender announced, once it did (receiver).
    announced: Vec<Option<DigestHex>>,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Offered,
    Running,
    /// The connection broke while running; each file keeps the status it had, and its row
    /// says it is paused.
    Paused,
    Ended,
}

/// What a message from the other side means for a transfer, when it is one that every state
/// reads alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// The transfer ended (cancelled or failed by the other side): stop, say nothing back.
    Ended,
    /// A message that does not fit: fail the transfer as a protocol error and say so.
    Refuse(TransferError),
    /// Not one of those: the caller handles it.
    Other(TransferMessage),
}

/// Whether a peer running protocol `version` can take part; `peer` names them in the error.
///
/// # Errors
/// [`TransferError::OlderPeer`] or [`TransferError::NewerPeer`] when it cannot.
pub fn check_version(peer: &str, version: u32) -> Result<(), TransferError> {
    match version.cmp(&TRANSFER_VERSION) {
        std::cmp::Ordering::Less => Err(TransferError::OlderPeer(peer.to_owned())),
        std::cmp::Ordering::Greater => Err(TransferError::NewerPeer(peer.to_owned())),
        std::cmp::Ordering::Equal => Ok(()),
    }
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
        let mut transfer = Self::new(id, Direction::Incoming, peer, files, Status::Receiving);
        transfer.assemblies = transfer
            .files
            .iter()
            .map(|file| Assembly::new(file.meta.size))
            .collect();
        transfer.announced = vec![None; transfer.files.len()];
        transfer
    }

    fn new(
        id: TransferId,
        direction: Direction,
        peer: &str,
        files: Vec<FileMeta>,
        status: Status,
    ) -> Self {
        let folders = has_folders(files.iter().map(|meta| meta.path.as_str()));
        let files = files
            .into_iter()
            .map(|meta| FileProgress {
                meta,
                done: 0,
                status: status.clone(),
                digest: None,
            })
            .collect();
        Self {
            id,
            direction,
            peer: peer.to_owned(),
            files,
            empty_folders: Vec::new(),
            folders,
            assemblies: Vec::new(),
            announced: Vec::new(),
            phase: Phase::Offered,
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
        self.phase = Phase::Running;
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
        self.phase == Phase::Running
    }

    /// Whether the offer still waits for the receiver's answer.
    pub fn is_offered(&self) -> bool {
        self.phase == Phase::Offered
    }

    /// Reads a message every state reads alike: the other side cancelled or failed, or a
    /// message only the other direction sends. Anything else is handed back.
    pub fn react(&mut self, message: TransferMessage) -> Reaction {
        use TransferMessage as M;
        let from_sender = matches!(
            message,
            M::Offer { .. } | M::Block { .. } | M::FileEnd { .. }
        );
        let from_receiver = matches!(
            message,
            M::Accept { .. }
                | M::Decline
                | M::Resend { .. }
                | M::Stored { .. }
                | M::FileVerified { .. }
        );
        match message {
            M::Cancel => {
                self.cancel();
                Reaction::Ended
            }
            M::Failed { reason } => {
                self.fail(&TransferError::Remote(reason));
                Reaction::Ended
            }
            _ if (self.direction == Direction::Outgoing && from_sender)
                || (self.direction == Direction::Incoming && from_receiver) =>
            {
                Reaction::Refuse(self.protocol_error())
            }
            other => Reaction::Other(other),
        }
    }

    /// Sender: the receiver stored `bytes` more of file `file` (a block). (That the block was
    /// in flight is checked by [`crate::flow::SendWindow::on_stored`].)
    pub fn stored(&mut self, file: u32, bytes: u64) {
        if let Some(file) = self.files.get_mut(file as usize) {
            file.done = (file.done + bytes).min(file.meta.size);
        }
    }

    /// Sender: every block of file `index` is handed to the channels, and its digest is
    /// `digest`; the file waits for the receiver's verdict.
    pub fn file_sent(&mut self, index: usize, digest: DigestHex) {
        if let Some(file) = self.files.get_mut(index)
            && file.status == Status::Sending
        {
            file.status = Status::Verifying;
            file.digest = Some(digest);
        }
    }

    /// Receiver: a chunk of `len` bytes at `offset` of file `file` arrived.
    ///
    /// # Errors
    /// [`TransferError::Protocol`] when it cannot belong to the transfer.
    pub fn chunk(&mut self, file: u32, offset: u64, len: u64) -> Result<Next, TransferError> {
        let blame = self.protocol_error();
        self.assembly(file)?.chunk(offset, len).map_err(|_| blame)
    }

    /// Receiver: the sender announced the digest of block `block` of file `file`.
    ///
    /// # Errors
    /// [`TransferError::Protocol`] when there is no such block.
    pub fn block_digest(
        &mut self,
        file: u32,
        block: u32,
        digest: &DigestHex,
    ) -> Result<Next, TransferError> {
        let blame = self.protocol_error();
        self.assembly(file)?
            .announce(block, digest.to_bytes())
            .map_err(|_| blame)
    }

    /// Receiver: the ranges of the chunks of `block` of `file` in the order they arrived.
    pub fn arrived(&self, file: u32, block: u32) -> &[std::ops::Range<u64>] {
        self.assemblies
            .get(file as usize)
            .map_or(&[], |assembly| assembly.arrived(block))
    }

    /// Receiver: block `block` of file `file` hashed to `actual`. A good block counts as
    /// verified bytes, and is to be written and then [`Self::block_stored`]; a damaged one is
    /// to be asked for again.
    ///
    /// # Errors
    /// [`TransferError::Protocol`] when there is no such file.
    pub fn check_block(
        &mut self,
        file: u32,
        block: u32,
        actual: [u8; 32],
    ) -> Result<Verdict, TransferError> {
        let verdict = self.assembly(file)?.check(block, actual);
        if let Verdict::Good { verified } = verdict {
            self.files[file as usize].done = verified;
        }
        Ok(verdict)
    }

    /// Receiver: the good block `block` of file `file` is on disk, so the transfer's record
    /// may name it.
    pub fn block_stored(&mut self, file: u32, block: u32) {
        if let Some(assembly) = self.assemblies.get_mut(file as usize) {
            assembly.stored(block);
        }
    }

    /// Receiver: the sender announced file `index`'s digest. Returns the file when it is now
    /// whole and checked, ready to be flushed ([`Self::complete_file`] after).
    ///
    /// # Errors
    /// [`TransferError::Integrity`] when its blocks add up to another digest;
    /// [`TransferError::Protocol`] when there is no such file or it was announced before.
    pub fn file_end(
        &mut self,
        index: u32,
        digest: DigestHex,
    ) -> Result<Option<usize>, TransferError> {
        let slot = self
            .announced
            .get_mut(index as usize)
            .filter(|slot| slot.is_none())
            .ok_or_else(|| TransferError::Protocol(self.peer.clone()))?;
        *slot = Some(digest);
        self.whole(index as usize)
    }

    /// Receiver: whether file `index` is whole, all its blocks checked and its digest
    /// announced: then it says "Verifying" until it is flushed.
    ///
    /// # Errors
    /// [`TransferError::Integrity`] when its blocks add up to another digest than announced.
    pub fn whole(&mut self, index: usize) -> Result<Option<usize>, TransferError> {
        let (Some(Some(announced)), Some(assembly)) =
            (self.announced.get(index), self.assemblies.get(index))
        else {
            return Ok(None);
        };
        let Some(actual) = assembly.digest() else {
            return Ok(None);
        };
        if &actual != announced {
            return Err(TransferError::Integrity);
        }
        let file = &mut self.files[index];
        if file.status != Status::Receiving {
            return Ok(None);
        }
        file.status = Status::Verifying;
        file.digest = Some(actual);
        Ok(Some(index))
    }

    /// File `index` is verified (sender: the receiver said so; receiver: its sink is flushed).
    ///
    /// # Errors
    /// [`TransferError::Protocol`] when that file was not waiting for its verdict.
    pub fn complete_file(&mut self, index: u32) -> Result<usize, TransferError> {
        let index = usize::try_from(index).map_err(|_| self.protocol_error())?;
        match self.files.get_mut(index) {
            // The verdict of a file the receiver already called whole when the transfer
            // resumed arrives late: it says nothing new.
            Some(file)
                if file.status == Status::Complete && self.direction == Direction::Outgoing =>
            {
                Ok(index)
            }
            Some(file) if file.status == Status::Verifying => {
                file.status = Status::Complete;
                file.done = file.meta.size;
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

    fn assembly(&mut self, file: u32) -> Result<&mut Assembly, TransferError> {
        let peer = &self.peer;
        self.assemblies
            .get_mut(file as usize)
            .ok_or_else(|| TransferError::Protocol(peer.clone()))
    }

    fn end_if_done(&mut self) {
        if self.is_complete() {
            self.phase = Phase::Ended;
        }
    }

    /// Whether every file arrived whole and checked.
    pub fn is_complete(&self) -> bool {
        self.files
            .iter()
            .all(|file| file.status == Status::Complete)
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
mod tests;
