//! A transfer whose connection broke: paused, with what each side keeps, and resumed.

use ferry_protocol::HeldFile;

use super::{Phase, Status, Transfer};
use crate::core::resume::{Held, to_ranges};

impl Transfer {
    /// Whether the connection broke and the transfer waits to go on.
    pub fn is_paused(&self) -> bool {
        self.phase == Phase::Paused
    }

    /// What file `index`'s row says: its status, or that it is paused.
    pub fn shown(&self, index: usize) -> Status {
        let status = self.files[index].status.clone();
        if self.phase == Phase::Paused && status.is_running() {
            Status::Paused {
                peer: self.peer.clone(),
            }
        } else {
            status
        }
    }

    /// The connection broke while bytes moved: the transfer waits to go on. The receiver
    /// forgets blocks it had not checked yet, and the digests of files not yet whole (both
    /// come again).
    pub fn pause(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::Paused;
        for assembly in &mut self.assemblies {
            assembly.interrupted();
        }
        for (announced, file) in self.announced.iter_mut().zip(&self.files) {
            if file.status == Status::Receiving {
                *announced = None;
            }
        }
    }

    /// Receiver: the sender is back; returns what this side holds of each file, to tell it.
    /// A file that is whole and checked counts as complete even while it is still flushed.
    pub fn resume_receiving(&mut self) -> Vec<HeldFile> {
        if self.phase == Phase::Paused {
            self.phase = Phase::Running;
        }
        self.held()
    }

    /// Receiver: what this side holds of each file.
    pub fn held(&self) -> Vec<HeldFile> {
        self.assemblies
            .iter()
            .zip(&self.files)
            .map(|(assembly, file)| {
                let (blocks, digest) = assembly.held();
                HeldFile {
                    complete: matches!(file.status, Status::Verifying | Status::Complete),
                    blocks: to_ranges(&blocks),
                    digest,
                }
            })
            .collect()
    }

    /// Sender: the receiver is back and holds `held` (read with
    /// [`crate::core::resume::read_held`]): files it holds whole are complete, the others are
    /// sent on from what it holds.
    pub fn resume_sending(&mut self, held: &[Held]) {
        if self.phase != Phase::Paused {
            return;
        }
        self.phase = Phase::Running;
        for (file, held) in self.files.iter_mut().zip(held) {
            if !file.status.is_running() {
                continue;
            }
            if held.complete {
                file.status = Status::Complete;
                file.done = file.meta.size;
            } else {
                file.status = Status::Sending;
                file.digest = None;
                file.done = held.bytes;
            }
        }
        self.end_if_done();
    }
}
