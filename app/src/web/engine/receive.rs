//! The receiver's pipeline: take the offer (checking the sender's version), ask the user,
//! then gather chunks from every lane into blocks ([`super::receiving::Receiving`] holds them)
//! and hand each complete block to [`super::store`], which checks it and writes it or asks for
//! it again; a broken connection pauses the pipeline until the sender resumes it
//! ([`super::resume`]).

use std::rc::Rc;

use ferry_protocol::chunk::ChunkHeader;
use ferry_protocol::{PeerId, TRANSFER_VERSION, TransferMessage};
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt, select};
use js_sys::Uint8Array;
use wasm_bindgen_futures::spawn_local;
use web_sys::RtcDataChannel;

use super::receiving::{Receiving, Target};
use super::{Answer, Engine, EngineEvent, Job};
use crate::core::blocks::Next;
use crate::core::offer::IncomingOffer;
use crate::core::paths::arrange;
use crate::core::transfer::{Reaction, Transfer, TransferError, check_version};
use crate::web::Notify;
use crate::web::channel::{Channel, ChannelEvent};
use crate::web::sink::{MEMORY_LIMIT, Opfs, Picked};

/// Gives `job` a new inbox for the chunks of its lanes, and returns its receiving end.
/// Lanes that sent into the one before, now dropped, stop at their next event.
fn new_inbox(job: &Job) -> mpsc::UnboundedReceiver<ChannelEvent> {
    let (inbox, events) = mpsc::unbounded();
    *job.inbox.borrow_mut() = Some(inbox);
    events
}

impl Engine {
    /// Receiver: a new transfer's control channel from `peer`.
    pub(super) fn incoming(&self, peer: PeerId, lane: u32, channel: RtcDataChannel) {
        let channel = Rc::new(Channel::new(
            channel,
            self.inner.config.high_water,
            Notify::default(),
        ));
        let engine = self.clone();
        spawn_local(async move { engine.run_incoming(peer, lane, channel).await });
    }

    /// Receiver: a channel for chunks of `job` on another lane; its chunks join the others.
    pub(super) fn receive_lane(&self, job: &Rc<Job>, channel: RtcDataChannel) {
        let inbox = job.inbox.borrow().clone();
        let Some(inbox) = inbox.filter(|_| job.transfer.borrow().is_running()) else {
            // Not accepted (yet), or paused: the sender opens lanes once the transfer runs,
            // so this one is late from a connection that broke, and nothing on it counts.
            channel.close();
            return;
        };
        let channel = Rc::new(Channel::new(
            channel,
            self.inner.config.high_water,
            job.drained.clone(),
        ));
        job.data.borrow_mut().push(Rc::clone(&channel));
        self.publish(job);
        spawn_local(async move {
            loop {
                match channel.next().await {
                    // A lane that ends does not end the transfer: its blocks come again.
                    ChannelEvent::Closed => return,
                    event => {
                        if inbox.unbounded_send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    async fn run_incoming(&self, peer: PeerId, lane: u32, channel: Rc<Channel>) {
        let nick = self.nick_of(&peer);
        let (id, offered, version, empty_folders) = loop {
            match channel.next().await {
                ChannelEvent::Open => {}
                ChannelEvent::Message(TransferMessage::Offer {
                    id,
                    files,
                    version,
                    empty_folders,
                }) if !files.is_empty() => {
                    break (id, files, version, empty_folders);
                }
                ChannelEvent::Message(TransferMessage::Resume { id, version }) => {
                    return self.resume_incoming(&peer, channel, &id, version);
                }
                ChannelEvent::Message(TransferMessage::Probe { id, version }) => {
                    return self.answer_probe(&peer, &channel, &id, version);
                }
                ChannelEvent::Message(first) => {
                    self.talk_incoming(&peer, lane, Rc::clone(&channel), &first);
                    return;
                }
                _ => return,
            }
        };
        if self.inner.jobs.borrow().contains_key(&id) {
            return;
        }
        // The offer dialog says whether the sender is on the device this person verified.
        self.saw_device_by_lane(&peer, lane);
        // The files are shown and kept under safe names and folders; an offer whose folders
        // would land outside the place the user picks is refused.
        let arranged = arrange(&offered, &empty_folders);
        let (metas, empty_folders, refused) = match arranged {
            Ok(arranged) => (arranged.files, arranged.empty_folders, None),
            Err(error) => (offered, Vec::new(), Some(error)),
        };
        let transfer = Transfer::incoming(id.clone(), &nick, metas.clone())
            .with_empty_folders(empty_folders.clone());
        let job = Rc::new(Job::new(
            peer,
            Rc::clone(&channel),
            Notify::default(),
            transfer,
        ));
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        if let Err(error) = check_version(&nick, version) {
            return self.fail(&job, &error);
        }
        if let Some(error) = refused {
            return self.fail(&job, &error.into());
        }
        if let Ok(link) = self.link(&job.peer(), 0) {
            self.show_route(&job, &link).await;
        }
        let opfs = self.opfs().await;
        let room = match opfs {
            Some(_) => Opfs::room().await,
            None => None,
        };
        // The sender may have gone while the storage opened; then nothing is left to ask.
        if job.transfer.borrow().is_ended() {
            return;
        }
        let offer = IncomingOffer {
            id: id.clone(),
            from: nick,
            files: metas,
            empty_folders,
            memory_only: opfs.is_none(),
            memory_limit: MEMORY_LIMIT,
            room,
        };
        let answer = self.ask(&job, &offer).await;
        let picked = match answer {
            Some(Answer::SaveTo(picked)) => Some(picked),
            Some(Answer::Download) if offer.can_accept() => None,
            _ => {
                if !job.transfer.borrow().is_ended() {
                    let _ = channel.send(&TransferMessage::Decline);
                    job.transfer.borrow_mut().decline();
                }
                return self.publish(&job);
            }
        };
        job.transfer.borrow_mut().accept();
        // Files kept in the private folder can wait there for the sender across a reload.
        job.resumable.set(picked.is_none() && opfs.is_some());
        let _ = channel.send(&TransferMessage::Accept {
            version: TRANSFER_VERSION,
        });
        if let Some(Picked::Folder(root)) = &picked
            && let Err(error) = self.make_empty_folders(&job, root).await
        {
            return self.fail(&job, &error.into());
        }
        self.receive_to_the_end(&job, Target { picked, opfs }).await;
    }

    /// Receives `job`'s files into `target` until the transfer ends, then lets its channels
    /// and extra lanes go.
    pub(super) async fn receive_to_the_end(&self, job: &Rc<Job>, target: Target) {
        self.publish(job);
        self.watch_quiet_close(job);
        self.receive(Receiving::new(Rc::clone(job), target)).await;
        job.inbox.borrow_mut().take();
        job.close();
        self.forget_record(job).await;
        self.publish(job);
        self.close_idle_lanes(&job.peer());
    }

    /// Shows the offer and waits for the user's answer, or for the sender to withdraw it.
    async fn ask(&self, job: &Job, offer: &IncomingOffer) -> Option<Answer> {
        let (answer_sender, answer) = oneshot::channel();
        *job.answer.borrow_mut() = Some(answer_sender);
        let control = job.control();
        (self.inner.events)(EngineEvent::Offer(offer.clone()));
        let answer = select! {
            answer = answer.fuse() => answer.ok(),
            event = control.next().fuse() => {
                // The sender withdrew (cancel or gone) before the user answered.
                match event {
                    ChannelEvent::Message(TransferMessage::Cancel) => {
                        job.transfer.borrow_mut().cancel();
                    }
                    _ => self.end_on_close(job),
                }
                None
            },
        };
        (self.inner.events)(EngineEvent::OfferGone(offer.id.clone()));
        answer
    }

    /// Takes chunks and messages until the transfer ends; a file cut short is never kept.
    async fn receive(&self, mut rx: Receiving) {
        let job = Rc::clone(&rx.job);
        let mut lanes = new_inbox(&job);
        loop {
            if job.transfer.borrow().is_paused() {
                // What arrived of blocks not checked yet comes again, and so does what the
                // lanes of the broken connection still queue: cut off with their inbox, it
                // cannot mix with what the sender sends after the resumption.
                rx.interrupted();
                lanes = new_inbox(&job);
                match self.await_resumption(&job).await {
                    Some(control) => self.resumed_receiving(&job, control),
                    None => break,
                }
            }
            if job.transfer.borrow().is_ended() {
                break;
            }
            let control = job.control();
            let event = select! {
                event = control.next().fuse() => event,
                event = lanes.next() => match event {
                    Some(event) => event,
                    None => continue,
                },
            };
            // A local cancel ends the transfer while this task waits, and a broken
            // connection pauses it; drop what follows.
            if !job.transfer.borrow().is_running() {
                continue;
            }
            let handled = match event {
                ChannelEvent::Chunk(header, bytes) => self.on_chunk(&mut rx, header, bytes).await,
                ChannelEvent::Message(message) => self.on_message(&mut rx, message).await,
                ChannelEvent::Unreadable(_) => Err(job.transfer.borrow().protocol_error()),
                ChannelEvent::Closed => {
                    self.end_on_close(&job);
                    Ok(())
                }
                ChannelEvent::Open => Ok(()),
            };
            if let Err(error) = handled {
                self.fail(&job, &error);
            }
        }
        rx.discard_partials().await;
    }

    async fn on_chunk(
        &self,
        rx: &mut Receiving,
        header: ChunkHeader,
        bytes: Uint8Array,
    ) -> Result<(), TransferError> {
        // The bench reads this mark to measure Accept to first byte.
        if rx.first_chunk() {
            crate::web::mark("ferry:first-byte");
        }
        let len = u64::from(bytes.length());
        let next = rx
            .job
            .transfer
            .borrow_mut()
            .chunk(header.file, header.offset, len)?;
        if next == Next::Duplicate {
            return Ok(());
        }
        rx.hold(header.file, header.offset, bytes);
        if let Next::Check(block) = next {
            self.check(rx, header.file, block).await?;
        }
        Ok(())
    }

    async fn on_message(
        &self,
        rx: &mut Receiving,
        message: TransferMessage,
    ) -> Result<(), TransferError> {
        let reaction = rx.job.transfer.borrow_mut().react(message);
        match reaction {
            Reaction::Ended => Ok(()),
            Reaction::Refuse(error) => Err(error),
            Reaction::Other(TransferMessage::Block {
                file,
                index,
                digest,
            }) => {
                let next = rx
                    .job
                    .transfer
                    .borrow_mut()
                    .block_digest(file, index, &digest)?;
                if let Next::Check(block) = next {
                    self.check(rx, file, block).await?;
                }
                Ok(())
            }
            Reaction::Other(TransferMessage::FileEnd { index, digest }) => {
                let whole = rx.job.transfer.borrow_mut().file_end(index, digest)?;
                if let Some(file) = whole {
                    self.finish(rx, file).await?;
                }
                Ok(())
            }
            Reaction::Other(_) => Err(rx.job.transfer.borrow().protocol_error()),
        }
    }
}
