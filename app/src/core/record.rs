//! What a receiver keeps of an unfinished transfer so that it outlives a reload of the page:
//! the offer, who sent it, and each file's checked blocks with their digests. The bytes stay
//! in the origin-private file system; this record says which of them can be trusted, and is
//! what the receiver answers with when the sender asks to go on.

use ferry_protocol::{DigestHex, FileMeta, TransferId};
use serde::{Deserialize, Serialize};

/// How long a paused transfer is kept before start-up clears it: a week, in seconds.
pub const KEEP_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// One unfinished incoming transfer, as kept in the browser's storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The transfer.
    pub id: TransferId,
    /// The tab whose private folder holds the partial files.
    pub tab: String,
    /// The sender's nick.
    pub from: String,
    /// The files, as offered (names already made safe).
    pub files: Vec<FileMeta>,
    /// What is held of each file, in the offer's order.
    pub held: Vec<RecordedFile>,
    /// When the record was written, in Unix seconds.
    pub saved_at: u64,
}

/// What is held of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// The file arrived whole and checked.
    pub complete: bool,
    /// The checked blocks, as sorted half-open ranges of block indexes.
    pub blocks: Vec<[u32; 2]>,
    /// Their digests, in order.
    pub digests: Vec<DigestHex>,
}

impl Record {
    /// Whether the record is older than [`KEEP_SECS`] at `now` (Unix seconds).
    pub fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.saved_at) as f64 > KEEP_SECS
    }

    /// The bytes the partial files hold.
    pub fn held_bytes(&self) -> u64 {
        use crate::core::blocks::block_range;
        self.files
            .iter()
            .zip(&self.held)
            .map(|(meta, held)| {
                if held.complete {
                    return meta.size;
                }
                held.blocks
                    .iter()
                    .flat_map(|&[start, end]| start..end)
                    .map(|block| {
                        let range = block_range(meta.size, block);
                        range.end - range.start
                    })
                    .sum()
            })
            .sum()
    }
}
