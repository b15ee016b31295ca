//! Pausing and resuming: a transfer whose connection breaks keeps what it has and waits. The
//! sender reaches the receiver again as soon as it can (at once when only the connection
//! broke, when the receiver is back on the server otherwise), opens a new control channel and
//! asks to go on; the receiver answers with what it holds, and the sender sends the rest.

use std::rc::Rc;
use std::time::Duration;

use ferry_protocol::{HeldFile, PeerId, TRANSFER_VERSION, TransferId, TransferMessage};
use futures::{FutureExt, select};
use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use super::sending::Sending;
use super::{Engine, Job};
use crate::core::backoff::Backoff;
use crate::core::blocks::block_count;
use crate::core::resume::{from_ranges, read_held};
use crate::core::transfer::{Direction, TransferError, check_version, no_longer_held};
use crate::web::channel::Channel;
use crate::web::peer::PeerLink;
use crate::web::{JsError, Notify, back_off, log, mark, sleep};

/// The first wait between attempts to reach a peer again; it doubles up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_secs(1);

/// The longest wait between attempts to reach a peer that is on the server.
const RETRY_MAX: Duration = Duration::from_secs(15);

/// How often a running transfer looks whether its control channel closed without saying so:
/// a peer connection closed from this page fires no event.
const QUIET_CLOSE_CHECK_MS: u32 = 1000;

/// How an attempt to go on ended, when it did not.
enum Attempt {
    /// The peer could not be reached (yet): try again later.
    Unreachable,
    /// The transfer cannot go on; it ended with this.
    Over(TransferError),
    /// The other side discarded the transfer.
    Discarded,
}

impl Engine {
    /// The connection under a running transfer broke (`why`): it waits to go on, keeping
    /// what it has.
    pub(super) fn pause(&self, job: &Job, why: &str) {
        if !job.transfer.borrow().is_running() {
            return;
        }
        // Said in the console, which is where a tester looks when a transfer paused twice.
        log(&format!(
            "transfer {} paused: {why}",
            job.transfer.borrow().id
        ));
        job.transfer.borrow_mut().pause();
        self.save_record(job);
        // The channels of the broken connection carry nothing more; closing them wakes the
        // transfer's tasks wherever they wait.
        job.close();
        // Said at once, however soon after the last publish: a pause is news, even one that
        // ends a moment later.
        self.publish_now(job);
    }

    /// Watches `job` until it ends: a control channel that closed without an event pauses
    /// it, as one that said so does. An incoming transfer's record is kept on the way too:
    /// blocks stored just before the sender went quiet (held back by the receiver's window,
    /// say) would otherwise stay unrecorded until the next block.
    pub(super) fn watch_quiet_close(&self, job: &Rc<Job>) {
        let (engine, job) = (self.clone(), Rc::clone(job));
        spawn_local(async move {
            while !job.transfer.borrow().is_ended() {
                sleep(QUIET_CLOSE_CHECK_MS).await;
                if job.transfer.borrow().is_running() {
                    job.control().ended_quietly();
                }
                if job.transfer.borrow().direction == Direction::Incoming {
                    engine.save_record(&job);
                }
            }
        });
    }

    /// `peer` left the server: a paused transfer trying to reach them stops trying.
    pub(super) fn peer_away(&self, peer: &PeerId) {
        for job in self.inner.jobs.borrow().values() {
            if &job.peer() == peer {
                job.back.notify_all();
            }
        }
    }

    /// `peer` (re)joined as `nick`: transfers paused with that nick go on with them.
    pub(super) fn peer_back(&self, peer: &PeerId, nick: &str) {
        let paused: Vec<Rc<Job>> = self
            .inner
            .jobs
            .borrow()
            .values()
            .filter(|job| {
                let transfer = job.transfer.borrow();
                transfer.is_paused() && transfer.peer == nick
            })
            .cloned()
            .collect();
        for job in paused {
            job.set_peer(peer.clone());
            job.back.notify_all();
        }
        let untold: Vec<TransferId> = {
            let mut untold = self.inner.untold.borrow_mut();
            let (theirs, others): (Vec<_>, Vec<_>) =
                untold.drain(..).partition(|(to, _)| to == nick);
            *untold = others;
            theirs.into_iter().map(|(_, id)| id).collect()
        };
        for id in untold {
            self.tell_discarded_to(peer, id);
        }
    }

    /// Sender: reaches the receiver of the paused `job` again and resumes it; false when the
    /// transfer ended instead (discarded on either side, or refused).
    pub(super) async fn resume_outgoing(
        &self,
        job: &Rc<Job>,
        sending: &Sending,
        files: &[File],
    ) -> bool {
        let mut backoff = Backoff::new(RETRY_BASE, RETRY_MAX);
        loop {
            if job.transfer.borrow().is_ended() {
                return false;
            }
            if !self.inner.present.borrow().contains(&job.peer()) {
                // Away from the server: wait until they are back, or the transfer is
                // discarded.
                let _ = job.back.notified().await;
                continue;
            }
            // The peer leaving, or coming back under a new session, makes this attempt moot:
            // start over at once with what is known now.
            let attempt = select! {
                attempt = self.reconnect(job, sending, files).fuse() => attempt,
                _ = job.back.notified().fuse() => continue,
            };
            match attempt {
                Ok(()) => return true,
                Err(Attempt::Over(error)) => {
                    self.fail(job, &error);
                    return false;
                }
                Err(Attempt::Discarded) => {
                    job.transfer.borrow_mut().cancel();
                    self.publish(job);
                    return false;
                }
                Err(Attempt::Unreachable) => {}
            }
            select! {
                () = back_off(&mut backoff).fuse() => {},
                _ = job.back.notified().fuse() => {},
            }
        }
    }

    /// Sender: the user discarded a paused transfer. A new control channel tells its
    /// receiver, now or when they are back on the server: the transfer is resumed only to be
    /// cancelled, so their partial files go too rather than wait for a sender that will not
    /// come back.
    pub(super) fn tell_discarded(&self, job: &Job) {
        let peer = job.peer();
        let id = job.transfer.borrow().id.clone();
        if self.inner.present.borrow().contains(&peer) {
            self.tell_discarded_to(&peer, id);
        } else {
            let nick = job.transfer.borrow().peer.clone();
            self.inner.untold.borrow_mut().push((nick, id));
        }
    }

    /// Tells `peer` that transfer `id` was discarded (see [`Self::tell_discarded`]).
    fn tell_discarded_to(&self, peer: &PeerId, id: TransferId) {
        let (engine, peer) = (self.clone(), peer.clone());
        spawn_local(async move {
            let asked = engine.ask_to_resume(&peer, id, Notify::default()).await;
            if let Ok((_, control, Some(TransferMessage::Resumed { .. }))) = asked {
                // Closing delivers what is queued first.
                let _ = control.send(&TransferMessage::Cancel);
                control.close();
            }
        });
    }

    /// Opens a new control channel to `peer` and asks to go on with transfer `id`: the link,
    /// the channel and the answer ([`Engine::ask_peer`]), or [`Attempt::Unreachable`].
    async fn ask_to_resume(
        &self,
        peer: &PeerId,
        id: TransferId,
        drained: Notify,
    ) -> Result<(Rc<PeerLink>, Rc<Channel>, Option<TransferMessage>), Attempt> {
        let what = format!("resuming transfer {id}");
        let resume = TransferMessage::Resume {
            id,
            version: TRANSFER_VERSION,
        };
        self.ask_peer(peer, &resume, &what, drained)
            .await
            .ok_or(Attempt::Unreachable)
    }

    /// Sender: one attempt to reach the receiver again and resume.
    async fn reconnect(
        &self,
        job: &Rc<Job>,
        sending: &Sending,
        files: &[File],
    ) -> Result<(), Attempt> {
        let id = job.transfer.borrow().id.clone();
        let (link, control, answer) = self
            .ask_to_resume(&job.peer(), id.clone(), job.drained.clone())
            .await?;
        let held = match answer {
            Some(TransferMessage::Resumed { files: held }) => {
                // After a reload this side knows no digest: it reads again what the receiver
                // holds, so that the digests can vouch the picked file is the one sent.
                self.hash_held(job, sending, files, &held)
                    .await
                    .map_err(|error| Attempt::Over(error.into()))?;
                let transfer = job.transfer.borrow();
                let offered: Vec<(&str, u64)> = transfer
                    .files
                    .iter()
                    .map(|file| (file.meta.name.as_str(), file.meta.size))
                    .collect();
                read_held(&held, &offered, &sending.digests.borrow())
            }
            Some(TransferMessage::Failed { reason }) => {
                return Err(Attempt::Over(TransferError::Remote(reason)));
            }
            Some(TransferMessage::Cancel) => return Err(Attempt::Discarded),
            _ => return Err(Attempt::Over(job.transfer.borrow().protocol_error())),
        };
        job.set_control(control);
        let held = held.map_err(|error| Attempt::Over(error.into()))?;
        let holds: u64 = held.iter().map(|file| file.bytes).sum();
        log(&format!(
            "transfer {id} resumed: the receiver holds {holds} bytes"
        ));
        job.transfer.borrow_mut().resume_sending(&held);
        sending.restart(held, link, self.inner.config.window);
        // The tests and the benchmark read this mark to time a resumption.
        mark("ferry:resumed");
        self.publish(job);
        Ok(())
    }

    /// Sender: reads and hashes each block the receiver says it holds that this side has no
    /// digest of (after a reload, all of them).
    async fn hash_held(
        &self,
        job: &Job,
        sending: &Sending,
        files: &[File],
        held: &[HeldFile],
    ) -> Result<(), JsError> {
        for ((index, entry), file) in held.iter().enumerate().zip(files) {
            let size = job.transfer.borrow().files[index].meta.size;
            // Ranges that do not fit the file are refused by `read_held` right after.
            let Some(blocks) = from_ranges(&entry.blocks, block_count(size)) else {
                continue;
            };
            for (block, _) in blocks.iter().enumerate().filter(|(_, held)| **held) {
                if sending.digests.borrow()[index][block].is_none() {
                    let block = u32::try_from(block).unwrap_or(u32::MAX);
                    sending.read_block(file, index, size, block).await?;
                }
            }
        }
        Ok(())
    }

    /// Receiver: `peer` opened `channel` to resume transfer `id`. Hands the channel to the
    /// paused transfer's task, or says why the transfer cannot go on.
    pub(super) fn resume_incoming(
        &self,
        peer: &PeerId,
        channel: Rc<Channel>,
        id: &TransferId,
        version: u32,
    ) {
        log(&format!(
            "transfer {id}: {} asks to resume it",
            self.nick_of(peer)
        ));
        if self.job(id).is_none() && self.resume_restored(peer, Rc::clone(&channel), id) {
            return;
        }
        let me = self.inner.my_nick.borrow().clone();
        let job = match self.asked_about(peer, id, version) {
            Ok(Some(job)) => job,
            Ok(None) => {
                let _ = channel.send(&no_longer_held(&me));
                return;
            }
            Err(refusal) => {
                let _ = channel.send(&refusal);
                return;
            }
        };
        let ended = {
            let transfer = job.transfer.borrow();
            transfer.is_ended().then(|| {
                transfer
                    .ended_otherwise(&me)
                    .unwrap_or_else(|| TransferMessage::Resumed {
                        files: transfer.held(),
                    })
            })
        };
        if let Some(answer) = ended {
            let _ = channel.send(&answer);
            return;
        }
        // This side may not have noticed yet that the old connection broke.
        self.pause(&job, "the sender came back over a new connection");
        job.set_peer(peer.clone());
        *job.resumed_on.borrow_mut() = Some(channel);
        job.back.notify_all();
    }

    /// Receiver: `peer`, of Ferry `version`, asks about transfer `id`: this side's incoming
    /// transfer of that id from that nick, if any, or the refusal of a version it cannot
    /// work with.
    pub(super) fn asked_about(
        &self,
        peer: &PeerId,
        id: &TransferId,
        version: u32,
    ) -> Result<Option<Rc<Job>>, TransferMessage> {
        let nick = self.nick_of(peer);
        if let Err(error) = check_version(&nick, version) {
            let me = self.inner.my_nick.borrow().clone();
            return Err(TransferMessage::Failed {
                reason: error.for_peer(&me).to_string(),
            });
        }
        Ok(self.job(id).filter(|job| {
            let transfer = job.transfer.borrow();
            transfer.direction == Direction::Incoming && transfer.peer == nick
        }))
    }

    /// Receiver: waits for the sender to resume the paused `job`; its new control channel,
    /// or `None` when the transfer was discarded instead.
    pub(super) async fn await_resumption(&self, job: &Job) -> Option<Rc<Channel>> {
        loop {
            if job.transfer.borrow().is_ended() {
                return None;
            }
            if let Some(channel) = job.resumed_on.borrow_mut().take() {
                return Some(channel);
            }
            let _ = job.back.notified().await;
        }
    }

    /// Receiver: goes on over `control`, telling the sender what this side holds.
    pub(super) fn resumed_receiving(&self, job: &Job, control: Rc<Channel>) {
        job.set_control(control);
        let files = job.transfer.borrow_mut().resume_receiving();
        {
            let transfer = job.transfer.borrow();
            let held: u64 = transfer.files.iter().map(|file| file.done).sum();
            log(&format!(
                "transfer {} resumed: {held} bytes held",
                transfer.id
            ));
        }
        let _ = job.control().send(&TransferMessage::Resumed { files });
        self.publish(job);
    }
}
