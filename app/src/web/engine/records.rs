//! Incoming transfers that outlive a reload of the page: while a transfer into the private
//! folder runs, its record ([`crate::core::record`]) is kept in local storage (at most every
//! second, and at once when it pauses or the page goes). After a reload, start-up shows this
//! tab's unfinished transfers as paused, and when their sender asks to go on, they do, from
//! the blocks their record names. Records older than a week are cleared.

use std::collections::HashSet;
use std::rc::Rc;

use ferry_protocol::{PeerId, TransferId};
use wasm_bindgen_futures::spawn_local;

use super::receiving::{Target, pack_entry};
use super::reopen::SENT_PREFIX;
use super::{Engine, EngineEvent, Job};
use crate::core::record::{Kept, Record, SentRecord};
use crate::core::rows::row_key;
use crate::core::transfer::{Status, Transfer};
use crate::web::channel::Channel;
use crate::web::{Notify, log, prefs};

/// Records are kept in local storage under this prefix and the transfer's id.
const RECORD_PREFIX: &str = "ferry-resume:";

/// An incoming transfer brought back from its record, until its sender asks to go on.
pub(super) struct Restored {
    pub(super) transfer: Transfer,
    /// The gone tab whose folder holds its files, when it is not this page's own.
    pub(super) folder: Option<String>,
}

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

/// The records under `prefix` of `tabs` (this page's, and the gone tabs it took over), with
/// their keys. Records that cannot be read, are older than a week or belong to tabs gone for
/// good (`abandoned`) are forgotten; other tabs' records are left alone, as those tabs are
/// open.
pub(super) fn kept<T: Kept>(
    prefix: &str,
    tabs: &[String],
    abandoned: &[String],
) -> Vec<(String, T)> {
    let mut records = Vec::new();
    for key in prefs::keys_with_prefix(prefix) {
        let record =
            read::<T>(&key).filter(|record| !abandoned.iter().any(|gone| gone == record.tab()));
        match record {
            None => prefs::remove(&key),
            Some(record) if tabs.iter().any(|tab| tab == record.tab()) => {
                records.push((key, record));
            }
            Some(_) => {}
        }
    }
    records
}

/// The record under `key`, if it can be read and is not older than a week.
fn read<T: Kept>(key: &str) -> Option<T> {
    prefs::text(key)
        .and_then(|json| serde_json::from_str::<T>(&json).ok())
        .filter(|record| !record.is_stale(unix_secs()))
}

/// The tabs that left transfers behind, coming in or going out: those whose records are kept
/// and not older than a week. A gone tab among them is taken over rather than cleared.
pub(crate) fn tabs_with_transfers() -> HashSet<String> {
    fn tabs<T: Kept>(prefix: &str) -> impl Iterator<Item = String> {
        prefs::keys_with_prefix(prefix)
            .into_iter()
            .filter_map(|key| read::<T>(&key))
            .map(|record| record.tab().to_owned())
    }
    tabs::<Record>(RECORD_PREFIX)
        .chain(tabs::<SentRecord>(SENT_PREFIX))
        .collect()
}

/// How many incoming transfers another open tab of this browser holds: this page has none of
/// `tabs` and no abandoned tab of theirs.
fn held_elsewhere(tabs: &[String], abandoned: &[String]) -> usize {
    prefs::keys_with_prefix(RECORD_PREFIX)
        .into_iter()
        .filter_map(|key| read::<Record>(&key))
        .filter(|record| {
            let tab = record.tab();
            !tabs.iter().any(|mine| mine == tab) && !abandoned.iter().any(|gone| gone == tab)
        })
        .count()
}

/// `transfer`'s id and the files of it that did not arrive whole.
fn unfinished(transfer: &Transfer) -> (TransferId, Vec<usize>) {
    let unfinished = (0..transfer.files.len())
        .filter(|&index| transfer.files[index].status != Status::Complete)
        .collect();
    (transfer.id.clone(), unfinished)
}

impl Engine {
    /// Receiver: keeps `job`'s record, if its files can outlive a reload, under the tab whose
    /// folder holds its files.
    pub(super) fn save_record(&self, job: &Job) {
        if !job.resumable.get() || job.transfer.borrow().is_ended() {
            return;
        }
        let folder = job.folder.borrow();
        let tab = folder.as_deref().unwrap_or(self.inner.storage.tab());
        let transfer = job.transfer.borrow();
        let record = transfer.record(tab, unix_secs());
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
        let folder = job.folder.borrow().clone();
        self.forget(folder.as_deref(), &id, &unfinished).await;
    }

    /// Forgets transfer `id`'s record and deletes the partial files of its `unfinished` files,
    /// in the folder of tab `folder` (`None`: this page's own).
    async fn forget(&self, folder: Option<&str>, id: &TransferId, unfinished: &[usize]) {
        prefs::remove(&record_key(id));
        if let Some(opfs) = self.opfs_of(folder).await {
            for &index in unfinished {
                opfs.remove(&row_key(id, index)).await;
            }
            if !unfinished.is_empty() {
                opfs.remove(&pack_entry(id)).await;
            }
        }
    }

    /// Start-up: shows the unfinished incoming transfers of `tabs` (this page's own, after a
    /// reload, and those of gone tabs it took over), paused until their senders are back;
    /// clears records older than a week or of tabs gone for good (`abandoned`, whose folders
    /// start-up cleared); and says how many another open tab holds.
    pub(super) fn restore_records(&self, tabs: &[String], abandoned: &[String]) {
        let records: Vec<(String, Record)> = kept(RECORD_PREFIX, tabs, abandoned);
        for (key, record) in records {
            let Some(transfer) = Transfer::restored(&record) else {
                prefs::remove(&key);
                continue;
            };
            self.publish_alone(&transfer);
            let folder =
                (record.tab() != self.inner.storage.tab()).then(|| record.tab().to_owned());
            self.inner
                .restored
                .borrow_mut()
                .insert(transfer.id.clone(), Restored { transfer, folder });
        }
        (self.inner.events)(EngineEvent::HeldElsewhere(held_elsewhere(tabs, abandoned)));
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
        let Some(Restored { transfer, folder }) = restored else {
            return false;
        };
        if transfer.peer != nick {
            self.inner
                .restored
                .borrow_mut()
                .insert(id.clone(), Restored { transfer, folder });
            return false;
        }
        let job = Rc::new(Job::new(
            peer.clone(),
            Rc::clone(&channel),
            Notify::default(),
            transfer,
        ));
        job.resumable.set(true);
        job.folder.replace(folder.clone());
        *job.resumed_on.borrow_mut() = Some(channel);
        self.inner
            .jobs
            .borrow_mut()
            .insert(id.clone(), Rc::clone(&job));
        let engine = self.clone();
        spawn_local(async move {
            let opfs = engine.opfs_of(folder.as_deref()).await;
            engine
                .receive_to_the_end(&job, Target { picked: None, opfs })
                .await;
        });
        true
    }

    /// Discards a transfer brought back from its record: its record and partial files go.
    /// Whether it was one.
    pub(super) fn discard_restored(&self, id: &TransferId) -> bool {
        let Some(Restored {
            mut transfer,
            folder,
        }) = self.inner.restored.borrow_mut().remove(id)
        else {
            return false;
        };
        let (id, unfinished) = unfinished(&transfer);
        transfer.cancel();
        self.publish_alone(&transfer);
        let engine = self.clone();
        spawn_local(async move { engine.forget(folder.as_deref(), &id, &unfinished).await });
        true
    }
}
