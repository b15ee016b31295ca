//! The sender's pipeline: open the transfer's channel and offer the files; once accepted,
//! read each file a block at a time, start hashing the block, stripe its chunks over the
//! lanes that have room, and announce its digest; after a file's last block, its digest.
//! Beside it, a reader takes the receiver's acknowledgements (which open the window), its
//! requests to send a block again, and its verdicts. When the connection breaks, the transfer
//! pauses and [`super::resume`] brings it back; sending then goes on with the blocks the
//! receiver lacks.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use ferry_protocol::chunk::ChunkHeader;
use ferry_protocol::{DigestHex, PeerId, TRANSFER_VERSION, TransferId, TransferMessage};
use futures::{FutureExt, select};
use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use super::sending::Sending;
use super::{Engine, Job};
use crate::core::blocks::{block_count, block_range, file_digest};
use crate::core::chunking::{chunk_ranges, chunk_size};
use crate::core::flow::SendWindow;
use crate::core::stripes::Striping;
use crate::core::transfer::{Reaction, Status, Transfer, TransferError, check_version};
use crate::web::channel::ChannelEvent;
use crate::web::chosen::Chosen;
use crate::web::files::SliceReader;
use crate::web::peer::PeerLink;
use crate::web::{JsError, Notify, mark, now_secs, random_bytes, sleep};

/// How long a sender waits for the connection to the receiver before it gives up and says
/// there is no network path. ICE finds a path, relayed or not, within a few seconds when one
/// exists; a link that knows sooner (no candidates at all) reports at once.
pub(super) const CONNECT_DEADLINE_MS: u32 = 20_000;

impl Engine {
    /// Offers the `chosen` files and folders to `to`; returns the new transfer's id.
    ///
    /// # Errors
    /// When there is no identity yet or the browser refuses a peer connection.
    pub fn send_files(
        &self,
        to: &PeerId,
        chosen: impl Into<Chosen>,
    ) -> Result<TransferId, JsError> {
        let chosen = chosen.into();
        mark("ferry:send");
        let link = self.link(to, 0)?;
        let id = TransferId::from_random_bytes(random_bytes());
        let nick = self.nick_of(to);
        let drained = Notify::default();
        let control = self.open_control(&link, drained.clone());
        let transfer = Transfer::outgoing(id.clone(), &nick, chosen.metas())
            .with_empty_folders(chosen.empty_folders);
        let files = chosen.files;
        let job = Rc::new(Job::new(to.clone(), control, drained, transfer));
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        self.publish(&job);
        let engine = self.clone();
        spawn_local(async move {
            engine.run_outgoing(&job, &link, &files).await;
            engine.publish(&job);
        });
        Ok(id)
    }

    async fn run_outgoing(&self, job: &Rc<Job>, link: &Rc<PeerLink>, files: &[File]) {
        if !self.offer(job, link).await {
            return;
        }
        job.transfer.borrow_mut().accept();
        self.save_sent_record(job, files);
        self.send_to_the_end(job, link, files).await;
    }

    /// Sends `files` for the accepted (or paused) `job` until the transfer ends, resuming it
    /// whenever the connection breaks.
    pub(super) async fn send_to_the_end(&self, job: &Rc<Job>, link: &Rc<PeerLink>, files: &[File]) {
        self.publish(job);
        self.watch_quiet_close(job);
        let rtt = link.rtt_ms().await;
        let sizes: Vec<u64> = job
            .transfer
            .borrow()
            .files
            .iter()
            .map(|file| file.meta.size)
            .collect();
        let sending = Rc::new(Sending {
            link: RefCell::new(Rc::clone(link)),
            window: RefCell::new(SendWindow::new(self.inner.config.window)),
            again: RefCell::new(VecDeque::new()),
            wake: Notify::default(),
            striping: RefCell::new(Striping::new(
                self.inner.config.lanes,
                sizes.iter().sum(),
                rtt,
            )),
            sampled: Cell::new(now_secs()),
            reader: RefCell::new(SliceReader::default()),
            hashed: RefCell::new(Vec::new()),
            digests: RefCell::new(
                sizes
                    .iter()
                    .map(|&size| vec![None; block_count(size) as usize])
                    .collect(),
            ),
            held: RefCell::new(Vec::new()),
            epoch: Cell::new(0),
        });
        loop {
            if job.transfer.borrow().is_paused()
                && !self.resume_outgoing(job, &sending, files).await
            {
                break;
            }
            if job.transfer.borrow().is_ended() {
                break;
            }
            // Each chunk leaves room for its header within the smaller side's message limit,
            // which the connection the transfer runs on now knows: after a reload this task
            // starts before it is connected.
            let limit = sending.link.borrow().max_message_size();
            let chunk = chunk_size(limit) - ferry_protocol::chunk::CHUNK_HEADER_BYTES;
            {
                let (engine, job, sending) = (self.clone(), Rc::clone(job), Rc::clone(&sending));
                spawn_local(async move { engine.read_answers(&job, &sending).await });
            }
            let result = self
                .send_all(job, files, &sending, chunk)
                .await
                .and(self.serve_again(job, files, &sending, chunk).await);
            if let Err(error) = result {
                self.fail(job, &error.into());
                break;
            }
        }
        self.forget_sent_record(job);
    }

    /// Opens the channel, offers the files and waits for the answer; true when accepted.
    async fn offer(&self, job: &Job, link: &PeerLink) -> bool {
        let mut deadline = Box::pin(sleep(CONNECT_DEADLINE_MS).fuse());
        let control = job.control();
        loop {
            let event = select! {
                event = control.next().fuse() => event,
                () = deadline => {
                    let peer = job.transfer.borrow().peer.clone();
                    let why = link.no_path();
                    self.fail(job, &TransferError::NoPath { peer, why });
                    return false;
                }
            };
            match event {
                ChannelEvent::Open => {
                    mark("ferry:open");
                    break;
                }
                ChannelEvent::Closed => {
                    self.end_on_close(job);
                    return false;
                }
                _ => {}
            }
        }
        self.show_route(job, link).await;
        let offer = TransferMessage::Offer {
            id: job.transfer.borrow().id.clone(),
            files: job
                .transfer
                .borrow()
                .files
                .iter()
                .map(|file| file.meta.clone())
                .collect(),
            version: TRANSFER_VERSION,
            empty_folders: job.transfer.borrow().empty_folders().to_vec(),
        };
        if job.control().send(&offer).is_err() {
            self.end_on_close(job);
            return false;
        }
        let message = match job.control().next().await {
            ChannelEvent::Message(message) => message,
            ChannelEvent::Closed => {
                self.end_on_close(job);
                return false;
            }
            _ => {
                let error = job.transfer.borrow().protocol_error();
                self.fail(job, &error);
                return false;
            }
        };
        let reaction = job.transfer.borrow_mut().react(message);
        match reaction {
            Reaction::Other(TransferMessage::Accept { version }) => {
                let peer = job.transfer.borrow().peer.clone();
                match check_version(&peer, version) {
                    Ok(()) => true,
                    Err(error) => {
                        self.fail(job, &error);
                        false
                    }
                }
            }
            Reaction::Other(TransferMessage::Decline) => {
                job.transfer.borrow_mut().decline();
                job.close();
                false
            }
            Reaction::Ended => false,
            Reaction::Refuse(error) => {
                self.fail(job, &error);
                false
            }
            Reaction::Other(_) => {
                let error = job.transfer.borrow().protocol_error();
                self.fail(job, &error);
                false
            }
        }
    }

    /// Reads how the link's bytes travel into the transfer's rows.
    pub(super) async fn show_route(&self, job: &Job, link: &PeerLink) {
        job.route.set(link.route().await);
        self.publish(job);
    }

    /// Sends every file the receiver does not hold whole, block by block (skipping the
    /// blocks it holds), then the file's digest; returns early when the transfer stops
    /// running.
    async fn send_all(
        &self,
        job: &Rc<Job>,
        files: &[File],
        sending: &Rc<Sending>,
        chunk: usize,
    ) -> Result<(), JsError> {
        let lanes = sending.striping.borrow().lanes();
        self.open_lanes(job, lanes, sending);
        for (index, file) in files.iter().enumerate() {
            if job.transfer.borrow().files[index].status != Status::Sending {
                continue;
            }
            let file_index = u32::try_from(index).unwrap_or(u32::MAX);
            let size = job.transfer.borrow().files[index].meta.size;
            for block in 0..block_count(size) {
                self.send_queued_again(job, files, sending, chunk).await?;
                if !job.transfer.borrow().is_running() {
                    return Ok(());
                }
                if sending.wants(index, block) {
                    self.send_block(job, file, file_index, block, sending, chunk)
                        .await?;
                    self.reconsider_lanes(job, sending).await;
                }
            }
            if !job.transfer.borrow().is_running() {
                return Ok(());
            }
            // Every block is read by now: sent here, or held by the receiver, whose account
            // of it was checked against this side's digests when the transfer resumed.
            let digests: Vec<[u8; 32]> = sending.digests.borrow()[index]
                .iter()
                .map(|digest| digest.unwrap_or_default())
                .collect();
            let digest = file_digest(&digests);
            job.transfer.borrow_mut().file_sent(index, digest.clone());
            let _ = job.control().send(&TransferMessage::FileEnd {
                index: file_index,
                digest,
            });
            self.publish(job);
        }
        Ok(())
    }

    /// After the last block: sends again what the receiver asks for, until it has all.
    async fn serve_again(
        &self,
        job: &Rc<Job>,
        files: &[File],
        sending: &Sending,
        chunk: usize,
    ) -> Result<(), JsError> {
        while job.transfer.borrow().is_running() {
            if sending.again.borrow().is_empty() {
                let _ = sending.wake.notified().await;
            }
            self.send_queued_again(job, files, sending, chunk).await?;
        }
        Ok(())
    }

    /// Sends the blocks waiting to go again.
    async fn send_queued_again(
        &self,
        job: &Rc<Job>,
        files: &[File],
        sending: &Sending,
        chunk: usize,
    ) -> Result<(), JsError> {
        loop {
            let next = sending.again.borrow_mut().pop_front();
            let Some((file, block)) = next else {
                return Ok(());
            };
            if !job.transfer.borrow().is_running() {
                return Ok(());
            }
            if let Some(source) = files.get(file as usize) {
                self.send_block(job, source, file, block, sending, chunk)
                    .await?;
            }
        }
    }

    /// Reads block `block` of `file` (the `index`th of the offer), hashes it, announces its
    /// digest and sends its chunks over the lanes with room, until the transfer stops running.
    async fn send_block(
        &self,
        job: &Rc<Job>,
        file: &File,
        index: u32,
        block: u32,
        sending: &Sending,
        chunk: usize,
    ) -> Result<(), JsError> {
        let size = job.transfer.borrow().files[index as usize].meta.size;
        let range = block_range(size, block);
        let (bytes, digest) = sending
            .read_block(file, index as usize, size, block)
            .await?;
        // The digest goes first, so it is there when the block's last chunk lands, on
        // whichever lane that is.
        let _ = job.control().send(&TransferMessage::Block {
            file: index,
            index: block,
            digest: DigestHex::from_digest(digest),
        });
        let mut parts: Vec<_> = chunk_ranges(range.end - range.start, chunk).collect();
        if self.inner.config.reverse_chunks {
            parts.reverse();
        }
        for part in parts {
            let len = part.end - part.start;
            let lane = self.room_for(job, sending, len).await;
            let Some(lane) = lane else {
                return Ok(());
            };
            // Offsets within one block are below its 1 MiB, so they fit in u32.
            #[allow(clippy::cast_possible_truncation)]
            let view = bytes.subarray(part.start as u32, part.end as u32);
            let header = ChunkHeader {
                file: index,
                offset: range.start + part.start,
            };
            let sent = self
                .channel(job, lane)
                .map(|channel| channel.send_chunk(header, &view));
            if let Some(Err(error)) = sent {
                crate::web::log(&format!("a lane failed: {error}"));
            }
            let mut window = sending.window.borrow_mut();
            window.on_sent(index, block, lane, len);
            let most = &self.inner.most_in_flight;
            most.set(most.get().max(window.most_in_flight()));
        }
        Ok(())
    }
}
