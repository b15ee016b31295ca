//! A transfer whose connection broke: paused, with what each side keeps, and resumed.

use ferry_protocol::{DigestHex, HeldFile, TransferId, TransferMessage};

use super::{Phase, Status, Transfer};
use crate::blocks::{Assembly, block_count};
use crate::record::{Record, RecordedFile, SentFile, SentRecord};
use crate::resume::{Held, from_ranges, to_ranges};

impl Transfer {
    /// Whether the connection broke and the transfer waits to go on.
    pub fn is_paused(&self) -> bool {
        self.phase == Phase::Paused
    }

    /// What file `index`'s row says: its status, or that it is paused.
    pub fn shown(&self, index: usize) -> Status {
        let status = self.files[index].status.clone();
        if self.phase == Phase::Paused
            && status.is_running()
            && !matches!(status, Status::PickAgain { .. })
        {
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

    /// Receiver: the record that lets this transfer outlive a reload of the page whose
    /// folder `tab` holds its files, written at `now` (Unix seconds). A block checked but
    /// still being written is left out ([`Self::block_stored`]).
    pub fn record(&self, tab: &str, now: u64) -> Record {
        Record {
            id: self.id.clone(),
            tab: tab.to_owned(),
            from: self.peer.clone(),
            files: self.files.iter().map(|file| file.meta.clone()).collect(),
            empty_folders: self.empty_folders().to_vec(),
            held: self
                .assemblies
                .iter()
                .zip(&self.files)
                .map(|(assembly, file)| {
                    let (blocks, digests) = assembly.recordable();
                    RecordedFile {
                        // Only a file handed over counts: one still flushed ("Verifying")
                        // when the page goes was never handed over, and comes back with
                        // every block held, to be handed over once the sender announces its
                        // digest again.
                        complete: file.status == Status::Complete,
                        blocks: to_ranges(&blocks),
                        digests: digests.into_iter().map(DigestHex::from_digest).collect(),
                    }
                })
                .collect(),
            saved_at: now,
        }
    }

    /// Receiver: a transfer brought back from its record after a reload, paused until the
    /// sender asks to go on; `None` when the record does not hold together.
    pub fn restored(record: &Record) -> Option<Self> {
        if record.held.len() != record.files.len() {
            return None;
        }
        let id: TransferId = record.id.clone();
        let mut transfer = Self::incoming(id, &record.from, record.files.clone())
            .with_empty_folders(record.empty_folders.clone());
        for (index, (meta, held)) in record.files.iter().zip(&record.held).enumerate() {
            let blocks = from_ranges(&held.blocks, block_count(meta.size))?;
            let digests: Vec<[u8; 32]> = held.digests.iter().map(DigestHex::to_bytes).collect();
            let assembly = Assembly::restore(meta.size, &blocks, &digests)?;
            let file = &mut transfer.files[index];
            if held.complete {
                file.status = Status::Complete;
                file.done = meta.size;
            } else {
                file.done = assembly.verified_bytes();
            }
            transfer.assemblies[index] = assembly;
        }
        transfer.phase = Phase::Paused;
        Some(transfer)
    }

    /// Sender: the record that lets this page, reloaded, say what it was sending.
    pub fn sent_record(&self, tab: &str, last_modified: &[f64], now: u64) -> SentRecord {
        SentRecord {
            id: self.id.clone(),
            tab: tab.to_owned(),
            to: self.peer.clone(),
            files: self
                .files
                .iter()
                .zip(last_modified)
                .map(|(file, &last_modified)| SentFile {
                    meta: file.meta.clone(),
                    last_modified,
                })
                .collect(),
            saved_at: now,
        }
    }

    /// Sender: a transfer this page was sending before it was reloaded, paused until its
    /// files are picked again ([`Self::picked_again`]).
    pub fn sending_restored(record: &SentRecord) -> Self {
        let metas = record.files.iter().map(|file| file.meta.clone()).collect();
        let mut transfer = Self::outgoing(record.id.clone(), &record.to, metas);
        transfer.phase = Phase::Paused;
        for file in &mut transfer.files {
            file.status = Status::PickAgain {
                name: file.meta.name.clone(),
                refused: false,
            };
        }
        transfer
    }

    /// Sender: the files were picked again; `right` says whether they are the ones sent.
    /// When they are, the transfer waits for the receiver to go on.
    pub fn picked_again(&mut self, right: bool) {
        for file in &mut self.files {
            if let Status::PickAgain { refused, .. } = &mut file.status {
                if right {
                    file.status = Status::Sending;
                } else {
                    *refused = true;
                }
            }
        }
    }

    /// Sender, after a reload: the receiver answered a probe with `held`. When it holds every
    /// file whole, the transfer is complete and nothing need be picked again: true then.
    pub fn probed(&mut self, held: &[HeldFile]) -> bool {
        let whole = self.phase == Phase::Paused
            && held.len() == self.files.len()
            && held.iter().all(|file| file.complete);
        if whole {
            for file in &mut self.files {
                file.status = Status::Complete;
                file.done = file.meta.size;
            }
            self.end_if_done();
        }
        whole
    }

    /// Receiver: what a sender that asks about this transfer after it ended other than whole
    /// is told: [`TransferMessage::Cancel`] when it was cancelled, else that `me` no longer
    /// has it. `None` while it runs or waits, and once it ended complete.
    pub fn ended_otherwise(&self, me: &str) -> Option<TransferMessage> {
        if !self.is_ended() || self.is_complete() {
            return None;
        }
        let cancelled = self
            .files
            .iter()
            .any(|file| file.status == Status::Cancelled);
        Some(if cancelled {
            TransferMessage::Cancel
        } else {
            no_longer_held(me)
        })
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
    /// [`crate::resume::read_held`]): files it holds whole are complete, the others are
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

/// What a receiver (`me`) tells a sender that asks about a transfer it does not have.
pub fn no_longer_held(me: &str) -> TransferMessage {
    TransferMessage::Failed {
        reason: format!("{me} no longer has this transfer"),
    }
}
