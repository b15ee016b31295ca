//! Outgoing transfers that outlive a reload of the sender's page. A page cannot keep the
//! files it was given across a reload, so it keeps what they were: each accepted transfer's
//! record ([`SentRecord`]: receiver, names, sizes and dates) stays in local storage until the
//! transfer ends. After a reload the transfer shows "pick NAME again"; the picked files are
//! recognised by name, size and date, and once the receiver is back the transfer resumes,
//! after the already-sent blocks are read again and their digests checked against the
//! receiver's.

use std::rc::Rc;

use ferry_protocol::{PeerId, TRANSFER_VERSION, TransferId, TransferMessage};
use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use super::records::{keep, kept, unix_secs};
use super::{Engine, Job};
use crate::core::record::SentRecord;
use crate::core::transfer::{Transfer, TransferError, no_longer_held};
use crate::web::channel::Channel;
use crate::web::{Notify, files, log, prefs};

/// Outgoing records are kept in local storage under this prefix and the transfer's id.
pub(super) const SENT_PREFIX: &str = "ferry-sending:";

/// An outgoing transfer brought back after a reload, until it runs again.
pub(super) struct Reopened {
    record: SentRecord,
    transfer: Transfer,
    /// The files, once picked again and recognised.
    files: Option<Vec<File>>,
}

fn sent_key(id: &TransferId) -> String {
    format!("{SENT_PREFIX}{id}")
}

impl Engine {
    /// Sender: keeps the record of `job`, just accepted, so a reload can say what it sent.
    pub(super) fn save_sent_record(&self, job: &Job, files: &[File]) {
        let dates: Vec<f64> = files.iter().map(File::last_modified).collect();
        let transfer = job.transfer.borrow();
        let record = transfer.sent_record(self.inner.storage.tab(), &dates, unix_secs());
        keep(&sent_key(&transfer.id), &record);
    }

    /// Sender: `job` ended; its record goes.
    pub(super) fn forget_sent_record(&self, job: &Job) {
        if job.transfer.borrow().is_ended() {
            prefs::remove(&sent_key(&job.transfer.borrow().id));
        }
    }

    /// Start-up: shows the unfinished outgoing transfers of `tabs` (this page's own, and
    /// those of gone tabs it took over), asking for their files, and clears records older
    /// than a week or of tabs gone for good (`abandoned`).
    pub(super) fn restore_sent_records(&self, tabs: &[String], abandoned: &[String]) {
        let records: Vec<(String, SentRecord)> = kept(SENT_PREFIX, tabs, abandoned);
        for (_, record) in records {
            let transfer = Transfer::sending_restored(&record);
            self.publish_alone(&transfer);
            let id = record.id.clone();
            self.inner.reopened.borrow_mut().insert(
                id.clone(),
                Reopened {
                    record,
                    transfer,
                    files: None,
                },
            );
            let engine = self.clone();
            spawn_local(async move { engine.probe_reopened(&id).await });
        }
    }

    /// Once the receiver of the reopened transfer `id` is on the server, asks how far it got
    /// ([`TransferMessage::Probe`]). One that arrived whole before this page went ends
    /// complete, with nothing to pick again; one the receiver cancelled or no longer has ends
    /// as they say. Otherwise, or without an answer (a Ferry of version 4 gives none), it
    /// waits for its files as before.
    async fn probe_reopened(&self, id: &TransferId) {
        let Some(peer) = self.reopened_receiver(id).await else {
            return;
        };
        let probe = TransferMessage::Probe {
            id: id.clone(),
            version: TRANSFER_VERSION,
        };
        let what = format!("asking how far transfer {id} got");
        let asked = self.ask_peer(&peer, &probe, &what, Notify::default()).await;
        let Some((_, control, answer)) = asked else {
            return;
        };
        control.close();
        let mut reopened = self.inner.reopened.borrow_mut();
        // Picked again and taken up, or discarded, while the answer came: that goes on.
        let Some(entry) = reopened.get_mut(id) else {
            return;
        };
        let ended = match answer {
            Some(TransferMessage::Holds { files }) => entry.transfer.probed(&files),
            Some(TransferMessage::Cancel) => {
                entry.transfer.cancel();
                true
            }
            Some(TransferMessage::Failed { reason }) => {
                entry.transfer.fail(&TransferError::Remote(reason));
                true
            }
            _ => false,
        };
        if !ended {
            return;
        }
        let Some(entry) = reopened.remove(id) else {
            return;
        };
        drop(reopened);
        prefs::remove(&sent_key(id));
        self.publish_alone(&entry.transfer);
    }

    /// Waits until the receiver of the reopened transfer `id` is on the server; `None` when
    /// the transfer was taken up again or discarded meanwhile.
    async fn reopened_receiver(&self, id: &TransferId) -> Option<PeerId> {
        loop {
            let nick = self.inner.reopened.borrow().get(id)?.transfer.peer.clone();
            if let Some(peer) = self.present_as(&nick) {
                return Some(peer);
            }
            let _ = self.inner.arrivals.notified().await;
        }
    }

    /// Receiver: `peer`'s reloaded page asks how far transfer `id` got; tells it, changing
    /// nothing here (a transfer kept across this page's own reload included).
    pub(super) fn answer_probe(
        &self,
        peer: &PeerId,
        channel: &Channel,
        id: &TransferId,
        version: u32,
    ) {
        let me = self.inner.my_nick.borrow().clone();
        let nick = self.nick_of(peer);
        let answer = match self.asked_about(peer, id, version) {
            Ok(Some(job)) => {
                let transfer = job.transfer.borrow();
                transfer
                    .ended_otherwise(&me)
                    .unwrap_or_else(|| TransferMessage::Holds {
                        files: transfer.held(),
                    })
            }
            Ok(None) => match self.inner.restored.borrow().get(id) {
                Some(restored) if restored.transfer.peer == nick => TransferMessage::Holds {
                    files: restored.transfer.held(),
                },
                _ => no_longer_held(&me),
            },
            Err(refusal) => refusal,
        };
        let _ = channel.send(&answer);
    }

    /// The files of transfer `id`, which this page sent before it was reloaded, were picked
    /// again: when they are the ones it sent, the transfer goes on as soon as its receiver is
    /// there; otherwise its rows say so.
    pub fn pick_again(&self, id: &TransferId, picked: Vec<File>) {
        let mut reopened = self.inner.reopened.borrow_mut();
        let Some(entry) = reopened.get_mut(id) else {
            return;
        };
        if entry.files.is_some() {
            return;
        }
        let described: Vec<(String, u64, f64)> = picked
            .iter()
            .map(|file| {
                let meta = files::describe(file);
                (meta.name, meta.size, file.last_modified())
            })
            .collect();
        let found = entry.record.find(&described);
        entry.transfer.picked_again(found.is_ok());
        self.publish_alone(&entry.transfer);
        let Ok(order) = found else {
            return;
        };
        entry.files = Some(order.iter().map(|&index| picked[index].clone()).collect());
        drop(reopened);
        let (engine, id) = (self.clone(), id.clone());
        spawn_local(async move { engine.send_after_reload(&id).await });
    }

    /// Waits until the receiver of the reopened transfer `id` is on the server, then takes
    /// the transfer up again: it resumes from what the receiver holds.
    async fn send_after_reload(&self, id: &TransferId) {
        let Some(peer) = self.reopened_receiver(id).await else {
            return;
        };
        let Some(entry) = self.inner.reopened.borrow_mut().remove(id) else {
            return;
        };
        let files = entry.files.unwrap_or_default();
        let link = match self.link(&peer, 0) {
            Ok(link) => link,
            Err(error) => return log(&format!("could not resume: {error}")),
        };
        let drained = Notify::default();
        // The transfer starts paused: its first resumption opens the channel it runs on.
        // Until then it holds one closed at once, which the receiver never has to wait on.
        let control = self.open_control(&link, drained.clone());
        control.close();
        let job = Rc::new(Job::new(peer, control, drained, entry.transfer));
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        self.send_to_the_end(&job, &link, &files).await;
        self.publish(&job);
    }

    /// The id of the user on the server now known as `nick`.
    fn present_as(&self, nick: &str) -> Option<ferry_protocol::PeerId> {
        let present = self.inner.present.borrow();
        self.inner
            .nicks
            .borrow()
            .iter()
            .find(|(peer, known)| known.as_str() == nick && present.contains(*peer))
            .map(|(peer, _)| peer.clone())
    }

    /// Discards a reopened transfer that does not run yet; whether it was one.
    pub(super) fn discard_reopened(&self, id: &TransferId) -> bool {
        let Some(mut entry) = self.inner.reopened.borrow_mut().remove(id) else {
            return false;
        };
        entry.transfer.cancel();
        prefs::remove(&sent_key(id));
        self.publish_alone(&entry.transfer);
        true
    }
}
