//! Going on after the connection broke: the receiver says what it holds of each file, in
//! ranges of blocks with one digest over them, and the sender reads that into the blocks it
//! still has to send, after checking that the file it reads is the one the receiver holds
//! part of.

use ferry_protocol::{DigestHex, HeldFile};

use crate::blocks::{block_count, block_range, file_digest};

/// Why a receiver's account of what it holds cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// It describes another number of files than the offer has.
    #[error("the receiver described {got} files where {expected} were offered")]
    FileCount {
        /// Files in the offer.
        expected: usize,
        /// Files described.
        got: usize,
    },
    /// Its ranges are empty, out of order, overlapping or past the file's last block.
    #[error("the receiver's record of {name} names blocks the file does not have")]
    BadRanges {
        /// The file's name.
        name: String,
    },
    /// The blocks it holds hash to another digest than the sender's file: the file changed
    /// (or is another file of the same name) since those blocks were sent.
    #[error("{name} is not the file that was being sent; it changed since")]
    Changed {
        /// The file's name.
        name: String,
    },
}

/// The blocks held, as sorted half-open ranges of block indexes: the compact form of a run of
/// held blocks that a resumed transfer's answer carries.
pub fn to_ranges(held: &[bool]) -> Vec<[u32; 2]> {
    let mut ranges: Vec<[u32; 2]> = Vec::new();
    for (index, _) in held.iter().enumerate().filter(|(_, held)| **held) {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        match ranges.last_mut() {
            Some(last) if last[1] == index => last[1] = index + 1,
            _ => ranges.push([index, index + 1]),
        }
    }
    ranges
}

/// The blocks of a file with `count` blocks that `ranges` names, or `None` when the ranges
/// are not sorted, disjoint, non-empty and within the file.
pub fn from_ranges(ranges: &[[u32; 2]], count: u32) -> Option<Vec<bool>> {
    let mut held = vec![false; count as usize];
    let mut floor = 0;
    for &[start, end] in ranges {
        if start < floor || start >= end || end > count {
            return None;
        }
        held[start as usize..end as usize].fill(true);
        // Touching ranges would have been one: refuse them too, so the form stays canonical.
        floor = end.saturating_add(1);
    }
    Some(held)
}

/// The digest over the held blocks' digests, in order: what the receiver says it holds and
/// the sender computes from its own file.
pub fn held_digest<'a>(digests: impl IntoIterator<Item = &'a [u8; 32]>) -> DigestHex {
    file_digest(digests)
}

/// What the sender makes of the receiver's account of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The receiver has the file whole and verified.
    pub complete: bool,
    /// Which blocks the receiver holds, by index.
    pub blocks: Vec<bool>,
    /// The bytes those blocks hold.
    pub bytes: u64,
}

impl Held {
    /// Whether block `index` is to be sent.
    pub fn wants(&self, index: u32) -> bool {
        !self.complete && !self.blocks.get(index as usize).copied().unwrap_or(false)
    }
}

/// Sender: reads the receiver's answer against the offered files (`(name, size)`) and the
/// digest of each block this side sent (`None` for blocks it has no digest of).
///
/// # Errors
/// When the answer does not fit the offer, or names a block this side has no digest for or
/// whose digests add up differently: then the file changed, and going on would mix two files.
pub fn read_held(
    answer: &[HeldFile],
    files: &[(&str, u64)],
    digests: &[Vec<Option<[u8; 32]>>],
) -> Result<Vec<Held>, ResumeError> {
    if answer.len() != files.len() {
        return Err(ResumeError::FileCount {
            expected: files.len(),
            got: answer.len(),
        });
    }
    let mut held = Vec::with_capacity(files.len());
    for (index, (entry, &(name, size))) in answer.iter().zip(files).enumerate() {
        let blocks = from_ranges(&entry.blocks, block_count(size)).ok_or_else(|| {
            ResumeError::BadRanges {
                name: name.to_owned(),
            }
        })?;
        let own = digests.get(index).map_or(&[][..], Vec::as_slice);
        let mine: Option<Vec<&[u8; 32]>> = blocks
            .iter()
            .enumerate()
            .filter(|(_, held)| **held)
            .map(|(block, _)| own.get(block).and_then(Option::as_ref))
            .collect();
        let changed = || ResumeError::Changed {
            name: name.to_owned(),
        };
        if held_digest(mine.ok_or_else(changed)?) != entry.digest {
            return Err(changed());
        }
        let bytes = blocks
            .iter()
            .enumerate()
            .filter(|(_, held)| **held)
            .map(|(block, _)| {
                let range = block_range(size, u32::try_from(block).unwrap_or(u32::MAX));
                range.end - range.start
            })
            .sum();
        held.push(Held {
            complete: entry.complete,
            blocks,
            bytes,
        });
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn held_blocks_go_into_ranges_and_back() {
        let held = [true, true, false, false, true, false, true, true, true];
        let ranges = to_ranges(&held);
        assert_eq!(ranges, [[0, 2], [4, 5], [6, 9]]);
        assert_eq!(from_ranges(&ranges, 9).as_deref(), Some(&held[..]));
        assert_eq!(to_ranges(&[false, false]), Vec::<[u32; 2]>::new());
        assert_eq!(from_ranges(&[], 3), Some(vec![false; 3]));
    }

    #[test]
    fn ranges_that_do_not_describe_a_file_are_refused() {
        for bad in [
            &[[0, 4]][..],     // past the last of 3 blocks
            &[[2, 2]],         // empty
            &[[2, 1]],         // backwards
            &[[1, 3], [0, 1]], // out of order
            &[[0, 2], [1, 3]], // overlapping
            &[[0, 1], [1, 2]], // touching: would have been one range
            &[[u32::MAX, 0]],  // nonsense
        ] {
            assert_eq!(from_ranges(bad, 3), None, "{bad:?}");
        }
    }

    fn answer(complete: bool, blocks: Vec<[u32; 2]>, digests: &[[u8; 32]]) -> HeldFile {
        HeldFile {
            complete,
            blocks,
            digest: held_digest(digests),
        }
    }

    #[test]
    fn the_sender_sends_what_the_receiver_lacks() {
        let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
        let files = [
            ("done.bin", 2 * MIB),
            ("half.bin", 3 * MIB + 5),
            ("empty", 0),
        ];
        let digests = vec![
            vec![Some(a), Some(b)],
            vec![Some(a), Some(b), Some(c), None],
            vec![],
        ];
        let reply = [
            answer(true, vec![[0, 2]], &[a, b]),
            answer(false, vec![[0, 1], [2, 3]], &[a, c]),
            answer(false, vec![], &[]),
        ];
        let held = read_held(&reply, &files, &digests).unwrap();
        assert!(held[0].complete && !held[0].wants(0) && !held[0].wants(1));
        let wanted: Vec<u32> = (0..4).filter(|&block| held[1].wants(block)).collect();
        assert_eq!(wanted, [1, 3]);
        assert_eq!(held[1].bytes, 2 * MIB);
        assert_eq!(held[2].bytes, 0);
    }

    #[test]
    fn a_file_that_changed_since_its_blocks_were_sent_is_refused() {
        let files = [("holiday.mov", 2 * MIB)];
        let reply = [answer(false, vec![[0, 1]], &[[1; 32]])];
        let changed = read_held(&reply, &files, &[vec![Some([9; 32]), None]]);
        assert_eq!(
            changed,
            Err(ResumeError::Changed {
                name: "holiday.mov".into()
            })
        );
        // A block this side has no digest of cannot be vouched for either.
        let unknown = read_held(&reply, &files, &[vec![None, None]]);
        assert!(matches!(unknown, Err(ResumeError::Changed { .. })));
    }

    #[test]
    fn an_answer_that_does_not_fit_the_offer_is_refused() {
        let files = [("a", MIB)];
        assert_eq!(
            read_held(&[], &files, &[]),
            Err(ResumeError::FileCount {
                expected: 1,
                got: 0
            })
        );
        let reply = [answer(false, vec![[0, 2]], &[])];
        assert!(matches!(
            read_held(&reply, &files, &[vec![None]]),
            Err(ResumeError::BadRanges { .. })
        ));
    }
}
