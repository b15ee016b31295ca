//! Block by block: a file is checked in blocks of [`BLOCK_SIZE`] bytes as they arrive, and
//! its digest is derived from the block digests (a hash list), so chunks may come in any order
//! over any connection, a damaged block costs one block sent again, and what was checked stays
//! checked.
//!
//! [`Assembly`] is the receiver's record of one file: which chunks of the blocks in flight
//! have arrived, the digests the sender announced, and which blocks passed their check. The
//! glue keeps the chunks' bytes and hashes a block when the assembly says it is ready.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use ferry_protocol::{BLOCK_SIZE, DigestHex};

/// The size of a block, in bytes.
const BLOCK: u64 = BLOCK_SIZE as u64;

/// How many blocks a file of `size` bytes has (none for an empty file).
pub fn block_count(size: u64) -> u32 {
    u32::try_from(size.div_ceil(BLOCK)).unwrap_or(u32::MAX)
}

/// The byte range of block `index` of a file of `size` bytes.
pub fn block_range(size: u64, index: u32) -> Range<u64> {
    let start = u64::from(index) * BLOCK;
    start.min(size)..(start + BLOCK).min(size)
}

/// The block that holds byte `offset`.
pub fn block_of(offset: u64) -> u32 {
    u32::try_from(offset / BLOCK).unwrap_or(u32::MAX)
}

/// The digest of a block's bytes.
pub fn block_digest(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// A file's digest from its block digests, in order: the BLAKE3 hash of their concatenation.
pub fn file_digest<'a>(blocks: impl IntoIterator<Item = &'a [u8; 32]>) -> DigestHex {
    let mut hasher = blake3::Hasher::new();
    for digest in blocks {
        hasher.update(digest);
    }
    DigestHex::from_digest(*hasher.finalize().as_bytes())
}

/// Why a chunk was refused: it cannot belong to this file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkRefusal {
    /// Its bytes run past the file's end.
    #[error("a chunk at {offset} of {len} bytes runs past the file's {size} bytes")]
    PastEnd {
        /// Where it starts.
        offset: u64,
        /// How long it is.
        len: u64,
        /// The file's size.
        size: u64,
    },
    /// It spans two blocks.
    #[error("a chunk at {offset} of {len} bytes spans two blocks")]
    SpansBlocks {
        /// Where it starts.
        offset: u64,
        /// How long it is.
        len: u64,
    },
    /// It overlaps bytes of its block that already arrived, without being the same chunk.
    #[error("a chunk at {offset} overlaps bytes already received")]
    Overlaps {
        /// Where it starts.
        offset: u64,
    },
    /// An empty chunk, which no sender sends.
    #[error("an empty chunk at {offset}")]
    Empty {
        /// Where it claims to be.
        offset: u64,
    },
}

/// What the glue does after the assembly took a chunk or a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for more.
    Wait,
    /// The chunk's bytes are here already (the block went again, over a connection that
    /// failed or after it was stored): drop them.
    Duplicate,
    /// Block `.0` has all its bytes and its digest: hash it and call [`Assembly::check`].
    Check(u32),
}

/// The outcome of a block's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The block is good: write it, then say so with [`Assembly::stored`]; the file now has
    /// this many verified bytes.
    Good {
        /// The file's verified bytes, this block included.
        verified: u64,
    },
    /// The block is damaged: drop its bytes and ask for it again.
    Resend,
}

/// The receiver's record of one file.
#[derive(Clone, Debug)]
pub struct Assembly {
    size: u64,
    /// Blocks with bytes arrived but not checked: the ranges that arrived, in arrival order.
    partial: HashMap<u32, Vec<Range<u64>>>,
    /// Digests announced for blocks not checked yet.
    announced: HashMap<u32, [u8; 32]>,
    /// The digest of each block that passed its check.
    verified: Vec<Option<[u8; 32]>>,
    /// Blocks that passed their check but are not on disk yet: a page that went now would
    /// not keep them, so a record made meanwhile leaves them out.
    unwritten: HashSet<u32>,
    verified_bytes: u64,
}

impl Assembly {
    /// The record of a file of `size` bytes with nothing received.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            partial: HashMap::new(),
            announced: HashMap::new(),
            verified: vec![None; block_count(size) as usize],
            unwritten: HashSet::new(),
            verified_bytes: 0,
        }
    }

    /// Takes a chunk of `len` bytes at `offset`.
    ///
    /// A chunk that is exactly one that arrived before, or of a block already checked, is a
    /// duplicate: a block sent again sends the same chunks.
    ///
    /// # Errors
    /// When it cannot belong to this file: past its end, across two blocks, overlapping other
    /// bytes already here, or empty.
    pub fn chunk(&mut self, offset: u64, len: u64) -> Result<Next, ChunkRefusal> {
        if len == 0 {
            return Err(ChunkRefusal::Empty { offset });
        }
        let end = offset.checked_add(len).filter(|&end| end <= self.size);
        let Some(end) = end else {
            return Err(ChunkRefusal::PastEnd {
                offset,
                len,
                size: self.size,
            });
        };
        let block = block_of(offset);
        if block_of(end - 1) != block {
            return Err(ChunkRefusal::SpansBlocks { offset, len });
        }
        if self.verified[block as usize].is_some() {
            return Ok(Next::Duplicate);
        }
        let arrived = self.partial.entry(block).or_default();
        if arrived.contains(&(offset..end)) {
            return Ok(Next::Duplicate);
        }
        if arrived
            .iter()
            .any(|range| range.start < end && offset < range.end)
        {
            return Err(ChunkRefusal::Overlaps { offset });
        }
        arrived.push(offset..end);
        Ok(self.ready(block))
    }

    /// Takes the digest the sender announced for `block`. An announcement for a block that
    /// is not in the file counts as a refused chunk.
    ///
    /// # Errors
    /// When the block is past the file's end.
    pub fn announce(&mut self, block: u32, digest: [u8; 32]) -> Result<Next, ChunkRefusal> {
        let Some(verified) = self.verified.get(block as usize) else {
            return Err(ChunkRefusal::PastEnd {
                offset: u64::from(block) * BLOCK,
                len: 0,
                size: self.size,
            });
        };
        if verified.is_some() {
            return Ok(Next::Wait);
        }
        self.announced.insert(block, digest);
        Ok(self.ready(block))
    }

    /// The ranges of `block` in the order they arrived, for the glue to find its bytes.
    pub fn arrived(&self, block: u32) -> &[Range<u64>] {
        self.partial.get(&block).map_or(&[], Vec::as_slice)
    }

    /// Judges `block`, which hashed to `actual`: good blocks are recorded as verified (and
    /// unwritten until [`Self::stored`]), damaged ones forgotten so they can arrive again.
    pub fn check(&mut self, block: u32, actual: [u8; 32]) -> Verdict {
        let announced = self.announced.remove(&block);
        self.partial.remove(&block);
        match (announced, self.verified.get_mut(block as usize)) {
            (Some(announced), Some(slot)) if announced == actual => {
                *slot = Some(actual);
                self.unwritten.insert(block);
                let range = block_range(self.size, block);
                self.verified_bytes += range.end - range.start;
                Verdict::Good {
                    verified: self.verified_bytes,
                }
            }
            _ => Verdict::Resend,
        }
    }

    /// The good `block` is on disk: records may name it.
    pub fn stored(&mut self, block: u32) {
        self.unwritten.remove(&block);
    }

    /// The bytes that passed their checks.
    pub fn verified_bytes(&self) -> u64 {
        self.verified_bytes
    }

    /// The file's digest once every block passed its check (for an empty file at once).
    pub fn digest(&self) -> Option<DigestHex> {
        let blocks: Option<Vec<&[u8; 32]>> = self.verified.iter().map(Option::as_ref).collect();
        blocks.map(file_digest)
    }

    /// The connection broke: forgets the chunks and digests of blocks not checked yet (the
    /// glue drops their bytes), so they can arrive again from the start.
    pub fn interrupted(&mut self) {
        self.partial.clear();
        self.announced.clear();
    }

    /// Which blocks passed their check, and the digest over their digests in order: what a
    /// resumed transfer tells the sender.
    pub fn held(&self) -> (Vec<bool>, DigestHex) {
        let (held, digests) = self.recordable();
        (held, file_digest(&digests))
    }

    /// What a record of this file may name: which blocks passed their check and are on
    /// disk, and their digests in order.
    pub fn recordable(&self) -> (Vec<bool>, Vec<[u8; 32]>) {
        let kept: Vec<Option<[u8; 32]>> = self
            .verified
            .iter()
            .zip(0..)
            .map(|(digest, index)| digest.filter(|_| !self.unwritten.contains(&index)))
            .collect();
        let held = kept.iter().map(Option::is_some).collect();
        (held, kept.into_iter().flatten().collect())
    }

    /// The record of a file of `size` bytes that holds the blocks marked in `held`, whose
    /// digests are `digests` in order (as [`Self::recordable`] gave them); `None` when the
    /// two do not fit the file or each other.
    pub fn restore(size: u64, held: &[bool], digests: &[[u8; 32]]) -> Option<Self> {
        let mut assembly = Self::new(size);
        if held.len() != assembly.verified.len()
            || held.iter().filter(|held| **held).count() != digests.len()
        {
            return None;
        }
        let mut digests = digests.iter();
        for (index, _) in held.iter().enumerate().filter(|(_, held)| **held) {
            assembly.verified[index] = digests.next().copied();
            let range = block_range(size, u32::try_from(index).ok()?);
            assembly.verified_bytes += range.end - range.start;
        }
        Some(assembly)
    }

    /// Whether `block` has all its bytes and an announced digest.
    fn ready(&self, block: u32) -> Next {
        let range = block_range(self.size, block);
        let arrived: u64 = self
            .arrived(block)
            .iter()
            .map(|range| range.end - range.start)
            .sum();
        if arrived == range.end - range.start && self.announced.contains_key(&block) {
            Next::Check(block)
        } else {
            Next::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn digest(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    #[test]
    fn blocks_cover_a_file_exactly() {
        assert_eq!(block_count(0), 0);
        assert_eq!(block_count(1), 1);
        assert_eq!(block_count(MIB), 1);
        assert_eq!(block_count(MIB + 1), 2);
        assert_eq!(block_range(MIB + 1, 1), MIB..MIB + 1);
        assert_eq!(block_of(MIB - 1), 0);
        assert_eq!(block_of(MIB), 1);
    }

    #[test]
    fn chunks_in_any_order_make_a_block_that_is_checked_once_announced() {
        let mut file = Assembly::new(MIB + 10);
        let quarter = MIB / 4;
        for offset in [3 * quarter, quarter, 0] {
            assert_eq!(file.chunk(offset, quarter), Ok(Next::Wait));
        }
        assert_eq!(
            file.chunk(MIB, 10),
            Ok(Next::Wait),
            "no digest for block 1 yet"
        );
        assert_eq!(file.announce(1, digest(1)), Ok(Next::Check(1)));
        assert_eq!(file.check(1, digest(1)), Verdict::Good { verified: 10 });
        assert_eq!(file.announce(0, digest(0)), Ok(Next::Wait));
        assert_eq!(file.chunk(2 * quarter, quarter), Ok(Next::Check(0)));
        assert_eq!(
            file.arrived(0),
            [
                3 * quarter..MIB,
                quarter..2 * quarter,
                0..quarter,
                2 * quarter..3 * quarter
            ]
        );
        assert_eq!(
            file.check(0, digest(0)),
            Verdict::Good { verified: MIB + 10 }
        );
        assert_eq!(file.digest(), Some(file_digest([&digest(0), &digest(1)])));
    }

    #[test]
    fn a_damaged_block_is_asked_for_again_and_then_accepted() {
        let mut file = Assembly::new(MIB);
        file.announce(0, digest(7)).unwrap();
        assert_eq!(file.chunk(0, MIB), Ok(Next::Check(0)));
        assert_eq!(file.check(0, digest(8)), Verdict::Resend);
        assert_eq!(file.verified_bytes(), 0);
        assert_eq!(file.digest(), None);
        // The block arrives again, with its digest announced again.
        assert_eq!(file.chunk(0, MIB), Ok(Next::Wait));
        assert_eq!(file.announce(0, digest(7)), Ok(Next::Check(0)));
        assert_eq!(file.check(0, digest(7)), Verdict::Good { verified: MIB });
    }

    #[test]
    fn chunks_from_elsewhere_are_refused() {
        let mut file = Assembly::new(MIB + 100);
        assert!(matches!(
            file.chunk(MIB + 50, 51),
            Err(ChunkRefusal::PastEnd { .. })
        ));
        assert!(matches!(
            file.chunk(u64::MAX - 1, 10),
            Err(ChunkRefusal::PastEnd { .. })
        ));
        assert!(matches!(
            file.chunk(MIB - 10, 20),
            Err(ChunkRefusal::SpansBlocks { .. })
        ));
        assert!(matches!(file.chunk(5, 0), Err(ChunkRefusal::Empty { .. })));
        file.chunk(0, 100).unwrap();
        assert_eq!(
            file.chunk(50, 100),
            Err(ChunkRefusal::Overlaps { offset: 50 })
        );
        assert!(file.announce(2, digest(0)).is_err(), "no block 2");
    }

    #[test]
    fn a_block_sent_again_brings_duplicates_that_are_dropped() {
        let mut file = Assembly::new(MIB + 100);
        file.chunk(0, MIB / 2).unwrap();
        assert_eq!(file.chunk(0, MIB / 2), Ok(Next::Duplicate));
        assert_eq!(file.chunk(MIB / 2, MIB / 2), Ok(Next::Wait));
        file.announce(1, digest(1)).unwrap();
        file.chunk(MIB, 100).unwrap();
        file.check(1, digest(1));
        assert_eq!(
            file.chunk(MIB, 100),
            Ok(Next::Duplicate),
            "a checked block takes no more bytes"
        );
        assert_eq!(file.announce(1, digest(1)), Ok(Next::Wait));
    }

    #[test]
    fn an_interruption_forgets_what_was_not_checked_and_keeps_what_was() {
        let mut file = Assembly::new(3 * MIB);
        file.announce(0, digest(0)).unwrap();
        file.chunk(0, MIB).unwrap();
        file.check(0, digest(0));
        file.stored(0);
        file.announce(1, digest(1)).unwrap();
        file.chunk(MIB, MIB / 2).unwrap();
        file.chunk(2 * MIB, MIB / 2).unwrap();
        file.interrupted();
        assert_eq!(file.arrived(1), [], "half a block is forgotten");
        assert_eq!(
            file.held(),
            (vec![true, false, false], file_digest([&digest(0)]))
        );
        // Block 1 comes again from the start, and needs its digest again.
        assert_eq!(file.chunk(MIB, MIB / 2), Ok(Next::Wait));
        assert_eq!(file.chunk(MIB + MIB / 2, MIB / 2), Ok(Next::Wait));
        assert_eq!(file.announce(1, digest(1)), Ok(Next::Check(1)));
        assert_eq!(
            file.chunk(0, MIB),
            Ok(Next::Duplicate),
            "block 0 stays checked"
        );
    }

    #[test]
    fn a_checked_block_is_held_only_once_it_is_stored() {
        let mut file = Assembly::new(2 * MIB);
        for block in 0..2 {
            file.announce(block, digest(1)).unwrap();
            file.chunk(u64::from(block) * MIB, MIB).unwrap();
            file.check(block, digest(1));
        }
        file.stored(1);
        // Block 0 is being written: a page that went now would not keep it.
        assert_eq!(file.recordable(), (vec![false, true], vec![digest(1)]));
        assert_eq!(file.verified_bytes(), 2 * MIB, "both passed their check");
        assert_eq!(
            file.chunk(0, MIB),
            Ok(Next::Duplicate),
            "a block being written takes no more bytes"
        );
        file.stored(0);
        assert_eq!(
            file.held(),
            (vec![true, true], file_digest([&digest(1), &digest(1)]))
        );
    }

    #[test]
    fn an_empty_file_is_complete_from_the_start() {
        let file = Assembly::new(0);
        assert_eq!(file.digest(), Some(file_digest([])));
        // BLAKE3 of nothing, from its specification's test vectors.
        assert_eq!(
            file_digest([]).as_str(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
