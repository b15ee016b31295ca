//! What the receiving task holds besides the transfer ([`Receiving`]), as the sender's tasks
//! share [`super::sending::Sending`]: where the files go, each file's open sink (or the
//! transfer's one pack), the chunks of blocks not checked yet, and when the transfer's record
//! was last kept. [`super::receive`] feeds it chunks and messages; [`super::store`] checks,
//! writes and hands over what it holds.

use std::collections::HashMap;
use std::rc::Rc;

use ferry_protocol::TransferId;
use js_sys::Uint8Array;

use super::Job;
use crate::core::blocks::{block_digest, block_of, block_range};
use crate::core::transfer::Transfer;
use crate::core::zip::Checksums;
use crate::web::now_secs;
use crate::web::sink::{Opfs, Picked, Sink};

/// The least time between two writes of one transfer's record, in seconds: what a tab that
/// closes without saving it (as Firefox's did once in CI, 12 MB behind) can lose is the
/// blocks of this long, which go again.
const SAVE_INTERVAL: f64 = 0.25;

/// Where a transfer's files go, as the user answered: a place they picked, or the page's
/// private storage, or (with neither) memory.
#[derive(Clone, Debug, Default)]
pub(super) struct Target {
    pub(super) picked: Option<Picked>,
    pub(super) opfs: Option<Opfs>,
}

/// The receiving task's state for one transfer.
pub(super) struct Receiving {
    pub(super) job: Rc<Job>,
    pub(super) target: Target,
    /// Each file's open sink, by file index; a pack's under [`PACK`].
    pub(super) sinks: HashMap<u32, Sink>,
    /// Where each file starts in the transfer's pack, when its files go into one
    /// ([`super::store`]).
    pub(super) pack: Option<Vec<u64>>,
    /// The CRC-32s of a folder's blocks, for its zip.
    pub(super) crcs: Checksums,
    /// The chunks of each block not checked yet (at most a window's worth), by file and block.
    chunks: HashMap<(u32, u32), Vec<(u64, Uint8Array)>>,
    /// The buffer a block is gathered in to be hashed, kept from block to block.
    pub(super) block: Vec<u8>,
    /// Whether a chunk has arrived yet.
    first_byte: bool,
    /// When the transfer's record was last kept (page clock, seconds).
    record_saved: f64,
}

/// The slot of [`Receiving::sinks`] a pack takes.
pub(super) const PACK: u32 = u32::MAX;

/// The private file holding a transfer's pack.
pub(super) fn pack_entry(id: &TransferId) -> String {
    format!("{id}-folder")
}

impl Target {
    /// Where each file of `transfer` starts in a pack, when its files go into one: a transfer
    /// of folders kept in private storage.
    fn pack_bases(&self, transfer: &Transfer) -> Option<Vec<u64>> {
        if self.picked.is_some() || self.opfs.is_none() || !transfer.has_folders() {
            return None;
        }
        let mut next = 0;
        Some(
            transfer
                .files
                .iter()
                .map(|file| {
                    let base = next;
                    next += file.meta.size;
                    base
                })
                .collect(),
        )
    }
}

impl Receiving {
    /// Nothing held yet of `job`'s files, which go to `target`.
    pub(super) fn new(job: Rc<Job>, target: Target) -> Self {
        let pack = target.pack_bases(&job.transfer.borrow());
        Self {
            job,
            target,
            sinks: HashMap::new(),
            pack,
            crcs: Checksums::default(),
            chunks: HashMap::new(),
            block: Vec::new(),
            first_byte: false,
            record_saved: f64::NEG_INFINITY,
        }
    }

    /// Whether this is the transfer's first chunk.
    pub(super) fn first_chunk(&mut self) -> bool {
        !std::mem::replace(&mut self.first_byte, true)
    }

    /// Holds a chunk of `file` at `offset` until its block is checked.
    pub(super) fn hold(&mut self, file: u32, offset: u64, bytes: Uint8Array) {
        self.chunks
            .entry((file, block_of(offset)))
            .or_default()
            .push((offset, bytes));
    }

    /// The transfer paused: what arrived of blocks not checked yet comes again.
    pub(super) fn interrupted(&mut self) {
        self.chunks.clear();
    }

    /// Gathers block `block` of file `file` (of `size` bytes) from its chunks into one buffer
    /// and hashes it; gives the digest and the chunks, which are no longer held.
    pub(super) fn assemble(
        &mut self,
        file: u32,
        size: u64,
        block: u32,
    ) -> ([u8; 32], Vec<(u64, Uint8Array)>) {
        let chunks = self.chunks.remove(&(file, block)).unwrap_or_default();
        let range = block_range(size, block);
        // The assembly let through only chunks that tile the block exactly.
        self.block
            .resize(usize::try_from(range.end - range.start).unwrap_or(0), 0);
        for (offset, bytes) in &chunks {
            let start = usize::try_from(offset - range.start).unwrap_or(0);
            bytes.copy_to(&mut self.block[start..start + bytes.length() as usize]);
        }
        (block_digest(&self.block), chunks)
    }

    /// Whether the transfer's record is due to be kept again, at most every
    /// [`SAVE_INTERVAL`]; if so, counts it as kept now.
    pub(super) fn record_due(&mut self) -> bool {
        let clock = now_secs();
        if clock - self.record_saved < SAVE_INTERVAL {
            return false;
        }
        self.record_saved = clock;
        true
    }

    /// Deletes every file still open: the transfer ended before they were whole, and a file
    /// cut short is never kept.
    pub(super) async fn discard_partials(&mut self) {
        for (_, partial) in self.sinks.drain() {
            partial.discard().await;
        }
    }

    /// Whether the files go where the user picked.
    pub(super) fn to_picked(&self) -> bool {
        self.target.picked.is_some()
    }
}
