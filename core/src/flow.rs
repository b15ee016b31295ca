//! Receiver-driven flow control, as plain data.
//!
//! A data channel cannot be paused: whatever the sender sends, the receiver's browser hands
//! over at once, and chunks waiting for a slow disk pile up in the receiver's memory. So the
//! receiver acknowledges each block once it is checked and written
//! ([`ferry_protocol::TransferMessage::Stored`]), and the sender keeps at most a window of bytes
//! sent for blocks not yet stored ([`SendWindow`]). The receiver's memory then holds at most
//! that window, however large the file and however slow the disk.
//!
//! The window also knows which connections ("lanes") carried each block, so that when one
//! fails the blocks it held can be sent again.

use std::collections::HashMap;

/// The default window: the most bytes a sender keeps sent but not yet stored.
///
/// 16 MiB keeps a fast link busy while acknowledgements travel back (at 100 MB/s it is 170 ms
/// of data, far more than a round trip plus one block's check and write), and covers a
/// bandwidth-delay product of 20 MB/s across 800 ms, while it stays small beside what a tab may
/// use, which is the receiver's worst case.
pub const WINDOW: u64 = 16 * 1024 * 1024;

/// The smallest window: one block must always fit, or its acknowledgement never comes.
pub const MIN_WINDOW: u64 = ferry_protocol::BLOCK_SIZE as u64;

/// An acknowledgement that cannot be true.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The receiver reported a block stored that was not sent, or reported it twice.
    #[error("the receiver reported block {block} of file {file} stored, which was not in flight")]
    NotInFlight {
        /// The file's position in the offer.
        file: u32,
        /// The block's position in the file.
        block: u32,
    },
}

/// One block in flight: the bytes sent for it (more than its size if it went again) and the
/// lanes that carried them, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct InFlight {
    sent: u64,
    lanes: u64,
}

/// The sender's side: blocks sent and not yet stored, and the window over their bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendWindow {
    window: u64,
    in_flight: u64,
    most_in_flight: u64,
    blocks: HashMap<(u32, u32), InFlight>,
}

impl SendWindow {
    /// A window of `window` bytes, but never below [`MIN_WINDOW`].
    pub fn new(window: u64) -> Self {
        Self {
            window: window.max(MIN_WINDOW),
            in_flight: 0,
            most_in_flight: 0,
            blocks: HashMap::new(),
        }
    }

    /// Whether `len` more bytes fit in the window. A chunk larger than the whole window may
    /// go when nothing is in flight, so that it cannot wait forever.
    pub fn may_send(&self, len: u64) -> bool {
        self.in_flight == 0 || self.in_flight.saturating_add(len) <= self.window
    }

    /// Counts `len` bytes of block `block` of file `file` handed to lane `lane`.
    pub fn on_sent(&mut self, file: u32, block: u32, lane: usize, len: u64) {
        let entry = self.blocks.entry((file, block)).or_default();
        entry.sent += len;
        entry.lanes |= 1 << lane.min(63);
        self.in_flight += len;
        self.most_in_flight = self.most_in_flight.max(self.in_flight);
    }

    /// Takes the receiver's word that block `block` of file `file` is stored.
    ///
    /// # Errors
    /// When that block was not in flight: the receiver broke the protocol.
    pub fn on_stored(&mut self, file: u32, block: u32) -> Result<(), FlowError> {
        let done = self
            .blocks
            .remove(&(file, block))
            .ok_or(FlowError::NotInFlight { file, block })?;
        self.in_flight -= done.sent;
        Ok(())
    }

    /// Lane `lane` failed: the blocks it carried part of, to send again.
    pub fn lost_lane(&self, lane: usize) -> Vec<(u32, u32)> {
        let bit = 1 << lane.min(63);
        let mut lost: Vec<(u32, u32)> = self
            .blocks
            .iter()
            .filter(|(_, in_flight)| in_flight.lanes & bit != 0)
            .map(|(&key, _)| key)
            .collect();
        lost.sort_unstable();
        lost
    }

    /// Bytes sent for blocks not yet stored.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The most bytes that were ever in flight at once.
    pub fn most_in_flight(&self) -> u64 {
        self.most_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn the_window_closes_when_full_and_opens_as_blocks_are_stored() {
        let mut window = SendWindow::new(2 * MIB);
        assert!(window.may_send(MIB));
        window.on_sent(0, 0, 0, MIB);
        assert!(window.may_send(MIB));
        window.on_sent(0, 1, 1, MIB);
        assert!(!window.may_send(1));
        assert_eq!(window.in_flight(), 2 * MIB);
        window.on_stored(0, 0).unwrap();
        assert!(window.may_send(MIB));
        assert!(!window.may_send(MIB + 1));
        window.on_stored(0, 1).unwrap();
        assert_eq!(window.in_flight(), 0);
        assert_eq!(window.most_in_flight(), 2 * MIB);
    }

    #[test]
    fn a_window_below_one_block_is_raised_to_it() {
        let mut window = SendWindow::new(1000);
        window.on_sent(0, 0, 0, MIN_WINDOW - 1);
        assert!(window.may_send(1));
        assert!(!window.may_send(2));
    }

    #[test]
    fn a_chunk_larger_than_the_window_goes_alone() {
        let mut window = SendWindow::new(MIB);
        assert!(window.may_send(3 * MIB));
        window.on_sent(0, 0, 0, 3 * MIB);
        assert!(!window.may_send(1));
    }

    #[test]
    fn a_block_sent_twice_frees_all_its_bytes_once_stored() {
        let mut window = SendWindow::new(8 * MIB);
        window.on_sent(1, 4, 0, MIB);
        window.on_sent(1, 4, 2, MIB);
        assert_eq!(window.in_flight(), 2 * MIB);
        window.on_stored(1, 4).unwrap();
        assert_eq!(window.in_flight(), 0);
    }

    #[test]
    fn blocks_never_sent_or_stored_twice_are_refused() {
        let mut window = SendWindow::new(4 * MIB);
        window.on_sent(0, 0, 0, MIB);
        assert_eq!(
            window.on_stored(0, 1),
            Err(FlowError::NotInFlight { file: 0, block: 1 })
        );
        window.on_stored(0, 0).unwrap();
        assert_eq!(
            window.on_stored(0, 0),
            Err(FlowError::NotInFlight { file: 0, block: 0 })
        );
    }

    #[test]
    fn a_lost_lane_gives_back_the_blocks_it_carried() {
        let mut window = SendWindow::new(8 * MIB);
        window.on_sent(0, 0, 0, MIB / 2);
        window.on_sent(0, 0, 1, MIB / 2);
        window.on_sent(0, 1, 0, MIB);
        window.on_sent(1, 0, 1, 10);
        assert_eq!(window.lost_lane(1), [(0, 0), (1, 0)]);
        assert_eq!(window.lost_lane(3), []);
        window.on_stored(0, 0).unwrap();
        assert_eq!(window.lost_lane(1), [(1, 0)]);
    }

    /// A receiver that stores blocks as they complete, a slow disk at a time, never lets the
    /// sender stall and never holds more than the window.
    #[test]
    fn sender_and_receiver_together_move_a_file_within_the_window() {
        let blocks = 40;
        let chunk = MIB / 4;
        let mut window = SendWindow::new(4 * MIB);
        let (mut sent, mut queued, mut stored) = (0u64, Vec::new(), 0);
        while stored < blocks {
            while sent < blocks * 4 && window.may_send(chunk) {
                let block = u32::try_from(sent / 4).unwrap();
                window.on_sent(0, block, 0, chunk);
                sent += 1;
                if sent % 4 == 0 {
                    queued.push(block);
                }
            }
            assert!(window.in_flight() <= 4 * MIB, "the receiver holds too much");
            assert!(
                window.in_flight() > 0,
                "the sender stalled with nothing in flight"
            );
            // The receiver stores one whole block per turn, as a slow disk would.
            if !queued.is_empty() {
                window.on_stored(0, queued.remove(0)).unwrap();
                stored += 1;
            }
        }
        assert_eq!(window.in_flight(), 0);
        assert_eq!(window.most_in_flight(), 4 * MIB);
    }
}
