//! Incoming transfers that outlive a reload of the page: while a transfer into the private
//! folder runs, its record ([`crate::core::record`]) is kept in local storage (at most every
//! second, and at once when it pauses or the page goes). After a reload, start-up shows this
//! tab's unfinished transfers as paused, and when their sender asks to go on, they do, from
//! the blocks their record names. Records older than a week are cleared.

use std::rc::Rc;

use ferry_protocol::{PeerId, TransferId};
use wasm_bindgen_futures::spawn_local;

use super::receiving::{Target, pack_entry};
use super::{Engine, Job};
use crate::core::record::{Kept, Record};
use crate::core::rows::row_key;
use crate::core::transfer::{Status, Transfer};
use crate::web::channel::Channel;
use crate::web::{Notify, log, prefs};

/// Records are kept in local storage under this prefix and the transfer's id.
const RECORD_PREFIX: &str = "ferry-resume:";

fn record_key(id: &TransferId) -> String {
    format!("{RECORD_PREFIX}{id}")
}

/// The wall clock in whole Unix seconds, for records that outlive the page.
pub(super) fn unix_secs() -> u64 {
    // Milliseconds since 1970 are a whole, positive number far below 2^53.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = (js_sys::Date::now() / 1000.0) as u64;
    secs
}

/// Keeps `record` under `key`; when the browser refuses (its storage full or missing), the
/// transfer still runs but cannot outlive a reload, which the log says.
pub(super) fn keep<T: Kept>(key: &str, record: &T) {
    let kept = serde_json::to_string(record).is_ok_and(|json| prefs::set_text(key, &json));
    if !kept {
        log("could not keep a transfer's record: it cannot resume after a reload");
    }
}

/// `tab`'s records under `prefix`, with their keys. Records that cannot be read, are older
/// than a week or belong to tabs gone for good (`abandoned`) are forgotten; other tabs'
/// records are left alone, as those tabs may be open.
pub(super) fn kept<T: Kept>(prefix: &str, tab: &str, abandoned: &[String]) -> Vec<(String, T)> {
    let mut records = Vec::new();
    for key in prefs::keys_with_prefix(prefix) {
        let record = prefs::text(&key)
            .and_then(|json| serde_json::from_str::<T>(&json).ok())
            .filter(|record| {
                !record.is_stale(unix_secs()) && !abandoned.iter().any(|gone| gone == record.tab())
            });
        match record {
            None => prefs::remove(&key),
            Some(record) if record.tab() == tab => records.push((key, record)),
            Some(_) => {}
        }
    }
    records
}

/// `transfer`'s id and the files of it that did not arrive whole.
fn unfinished(transfer: &Transfer) -> (TransferId, Vec<usize>) {
    let unfinished = (0..transfer.files.len())
        .filter(|&index| transfer.files[index].status != Status::Complete)
        .collect();
    (transfer.id.clone(), unfinished)
}

impl Engine {
    /// Receiver: keeps `job`'s record, if its files can outlive a reload.
    pub(super) fn save_record(&self, job: &Job) {
        if !job.resumable.get() || job.transfer.borrow().is_ended() {
            return;
        }
        let transfer = job.transfer.borrow();
        let record = transfer.record(self.inner.storage.tab(), unix_secs());
        keep(&record_key(&transfer.id), &record);
    }

    /// The page is going: keeps the record of every transfer still coming in.
    pub(super) fn save_records_now(&self) {
        let jobs: Vec<Rc<Job>> = self.inner.jobs.borrow().values().cloned().collect();
        for job in jobs {
            self.save_record(&job);
        }
    }

    /// Receiver: `job` ended; its record goes, and with it the partial files of the files
    /// that did not arrive.
    pub(super) async fn forget_record(&self, job: &Job) {
        if !job.resumable.get() {
            return;
        }
        let (id, unfinished) = unfinished(&job.transfer.borrow());
        self.forget(&id, &unfinished).await;
    }

    /// Forgets transfer `id`'s record and deletes the partial files of its `unfinished` files.
    async fn forget(&self, id: &TransferId, unfinished: &[usize]) {
        prefs::remove(&record_key(id));
        if let Some(opfs) = self.opfs().await {
            for &index in unfinished {
                opfs.remove(&row_key(id, index)).await;
            }
            if !unfinished.is_empty() {
                opfs.remove(&pack_entry(id)).await;
            }
        }
    }

    /// Start-up: shows this tab's unfinished incoming transfers, paused until their senders
    /// are back, and clears records older than a week or of tabs gone for good
    /// (`abandoned`, whose folders start-up cleared).
    pub(super) fn restore_records(&self, abandoned: &[String]) {
        let records: Vec<(String, Record)> =
            kept(RECORD_PREFIX, self.inner.storage.tab(), abandoned);
        for (key, record) in records {
            let Some(transfer) = Transfer::restored(&record) else {
                prefs::remove(&key);
                continue;
            };
            self.publish_alone(&transfer);
            self.inner
                .restored
                .borrow_mut()
                .insert(transfer.id.clone(), transfer);
        }
    }

    /// Receiver: `peer` asks over `channel` to go on with transfer `id`, which this page
    /// brought back from its record. Whether it was one.
    pub(super) fn resume_restored(
        &self,
        peer: &PeerId,
        channel: Rc<Channel>,
        id: &TransferId,
    ) -> bool {
        let nick = self.nick_of(peer);
        let restored = self.inner.restored.borrow_mut().remove(id);
        let Some(transfer) = restored else {
            return false;
        };
        if transfer.peer != nick {
            self.inner
                .restored
                .borrow_mut()
                .insert(id.clone(), transfer);
            return false;
        }
        let job = Rc::new(Job::new(
            peer.clone(),
            Rc::clone(&channel),
            Notify::default(),
            transfer,
        ));
        job.resumable.set(true);
        *job.resumed_on.borrow_mut() = Some(channel);
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        let engine = self.clone();
        spawn_local(async move {
            let opfs = engine.opfs().await;
            engine
                .receive_to_the_end(&job, Target { picked: None, opfs })
                .await;
        });
        true
    }

    /// Discards a transfer brought back from its record: its record and partial files go.
    /// Whether it was one.
    pub(super) fn discard_restored(&self, id: &TransferId) -> bool {
        let Some(mut transfer) = self.inner.restored.borrow_mut().remove(id) else {
            return false;
        };
        let (id, unfinished) = unfinished(&transfer);
        transfer.cancel();
        self.publish_alone(&transfer);
        let engine = self.clone();
        spawn_local(async move { engine.forget(&id, &unfinished).await });
        true
    }
}
