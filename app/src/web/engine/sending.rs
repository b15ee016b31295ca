//! What the sender's tasks share ([`Sending`]), and the reader beside the sending task: it
//! takes the receiver's acknowledgements (which open the window), its requests to send a
//! block again, and its verdicts.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use ferry_protocol::TransferMessage;
use js_sys::Uint8Array;
use web_sys::File;

use super::{Engine, Job};
use crate::core::blocks::{block_count, block_digest, block_range};
use crate::core::flow::SendWindow;
use crate::core::resume::Held;
use crate::core::stripes::Striping;
use crate::core::transfer::Reaction;
use crate::web::channel::ChannelEvent;
use crate::web::files::SliceReader;
use crate::web::peer::PeerLink;
use crate::web::{JsError, Notify};

/// What the sending task and the reader beside it share.
pub(super) struct Sending {
    /// The connection of the first lane, which the striping schedule measures.
    pub(super) link: RefCell<Rc<PeerLink>>,
    pub(super) window: RefCell<SendWindow>,
    /// Blocks to send again: asked for by the receiver, or carried by a lane that failed.
    pub(super) again: RefCell<VecDeque<(u32, u32)>>,
    /// Wakes the sending task: the window opened, a block is to go again, or the transfer
    /// ended.
    pub(super) wake: Notify,
    pub(super) striping: RefCell<Striping>,
    /// When the lanes were last reconsidered.
    pub(super) sampled: Cell<f64>,
    /// Reads the files, block by block, into one buffer.
    pub(super) reader: RefCell<SliceReader>,
    /// A block's bytes copied out of the browser's buffer to be hashed, kept from block to
    /// block.
    pub(super) hashed: RefCell<Vec<u8>>,
    /// The digest of every block read so far, by file and block: each file's digest is made
    /// of them, and a resumed transfer is checked against them.
    pub(super) digests: RefCell<Vec<Vec<Option<[u8; 32]>>>>,
    /// What the receiver held when the transfer last resumed: those blocks are not sent.
    pub(super) held: RefCell<Vec<Held>>,
    /// Counts resumptions, so a watcher of a lane, or a reader of a control channel, from
    /// before one does not act after it.
    pub(super) epoch: Cell<u32>,
}

impl Sending {
    /// Goes on after a resumption: the receiver holds `held`, nothing is in flight any more,
    /// and nothing is queued to go again (what the receiver lacks goes anyway).
    pub(super) fn restart(&self, held: Vec<Held>, link: Rc<PeerLink>, window: u64) {
        *self.held.borrow_mut() = held;
        *self.link.borrow_mut() = link;
        *self.window.borrow_mut() = SendWindow::new(window);
        self.again.borrow_mut().clear();
        self.epoch.set(self.epoch.get() + 1);
    }

    /// Reads block `block` of `file` (the `index`th of the offer, of `size` bytes), hashes
    /// it and keeps its digest; returns its bytes, valid until the next read, and the digest.
    pub(super) async fn read_block(
        &self,
        file: &File,
        index: usize,
        size: u64,
        block: u32,
    ) -> Result<(Uint8Array, [u8; 32]), JsError> {
        let range = block_range(size, block);
        // Only the sending task reads; the reader is taken out for the wait rather than
        // borrowed across it.
        let mut reader = self.reader.take();
        let read = reader.read(file, range.start, range.end).await;
        self.reader.replace(reader);
        let bytes = read?;
        let digest = {
            let mut hashed = self.hashed.borrow_mut();
            hashed.resize(bytes.length() as usize, 0);
            bytes.copy_to(&mut hashed);
            block_digest(&hashed)
        };
        if let Some(slot) = self.digests.borrow_mut()[index].get_mut(block as usize) {
            *slot = Some(digest);
        }
        Ok((bytes, digest))
    }

    /// Whether block `block` of file `file` is to be sent.
    pub(super) fn wants(&self, file: usize, block: u32) -> bool {
        self.held
            .borrow()
            .get(file)
            .is_none_or(|held| held.wants(block))
    }
}

impl Engine {
    /// Sender: reads the receiver's acknowledgements, requests and verdicts until the
    /// transfer ends or pauses, waking the sending task after each.
    pub(super) async fn read_answers(&self, job: &Rc<Job>, sending: &Sending) {
        let control = job.control();
        let epoch = sending.epoch.get();
        while job.transfer.borrow().is_running() {
            let event = control.next().await;
            if sending.epoch.get() != epoch {
                // The transfer paused and resumed over a new control channel while this
                // waited, and that one has its own reader: what the old one says now (its
                // close, most likely) is about a connection the transfer left.
                return;
            }
            match event {
                ChannelEvent::Message(message) => self.on_answer(job, sending, message),
                ChannelEvent::Closed => self.end_on_close(job),
                ChannelEvent::Chunk(..) | ChannelEvent::Unreadable(_) => {
                    let error = job.transfer.borrow().protocol_error();
                    self.fail(job, &error);
                }
                ChannelEvent::Open => {}
            }
            sending.wake.notify_all();
        }
        sending.wake.notify_all();
        if job.transfer.borrow().is_paused() {
            return;
        }
        // Every verdict is in (or the transfer failed): the channels have done their work.
        job.close();
        sending.wake.notify_all();
        self.publish(job);
        self.close_idle_lanes(&job.peer());
    }

    fn on_answer(&self, job: &Job, sending: &Sending, message: TransferMessage) {
        let reaction = job.transfer.borrow_mut().react(message);
        match reaction {
            Reaction::Ended => {
                job.close();
                self.publish(job);
            }
            Reaction::Refuse(error) => self.fail(job, &error),
            Reaction::Other(TransferMessage::Stored { file, block }) => {
                if sending.window.borrow_mut().on_stored(file, block).is_err() {
                    let error = job.transfer.borrow().protocol_error();
                    return self.fail(job, &error);
                }
                let size = job
                    .transfer
                    .borrow()
                    .files
                    .get(file as usize)
                    .map_or(0, |file| file.meta.size);
                let range = block_range(size, block);
                job.transfer
                    .borrow_mut()
                    .stored(file, range.end - range.start);
                self.progress(job, file as usize);
            }
            Reaction::Other(TransferMessage::Resend { file, block }) => {
                let known = job
                    .transfer
                    .borrow()
                    .files
                    .get(file as usize)
                    .is_some_and(|meta| block < block_count(meta.meta.size));
                if known {
                    sending.again.borrow_mut().push_back((file, block));
                } else {
                    let error = job.transfer.borrow().protocol_error();
                    self.fail(job, &error);
                }
            }
            Reaction::Other(TransferMessage::FileVerified { index }) => {
                let completed = job.transfer.borrow_mut().complete_file(index);
                match completed {
                    Ok(_) => self.publish(job),
                    Err(error) => self.fail(job, &error),
                }
            }
            Reaction::Other(_) => {
                let error = job.transfer.borrow().protocol_error();
                self.fail(job, &error);
            }
        }
    }
}
