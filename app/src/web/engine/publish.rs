//! What the views learn of transfers: each transfer's rows, published when they change, at
//! most every [`PUBLISH_GAP`], with progress at most every [`PROGRESS_INTERVAL`].

use std::collections::HashSet;

use wasm_bindgen_futures::spawn_local;

use super::{Engine, EngineEvent, Job};
use crate::core::rows::{Around, rows};
use crate::core::transfer::Transfer;
use crate::web::{now_secs, sleep};

/// How often a running transfer republishes its progress, in seconds.
const PROGRESS_INTERVAL: f64 = 0.2;

/// The least time between two publishes of one transfer's rows, in seconds.
pub(super) const PUBLISH_GAP: f64 = 0.1;

impl Engine {
    /// Publishes the rows of `job` that changed.
    ///
    /// At most one publish happens per [`PUBLISH_GAP`]: a change within it is published when
    /// it has passed, together with whatever else changed meanwhile. A folder of thousands of
    /// small files changes rows thousands of times a second, and each publish costs a look at
    /// every row of the transfer.
    pub(super) fn publish(&self, job: &Job) {
        let since = now_secs() - job.last_published.get();
        if since >= PUBLISH_GAP {
            return self.publish_now(job);
        }
        if job.publish_due.replace(true) {
            return;
        }
        let engine = self.clone();
        let id = job.transfer.borrow().id.clone();
        // Whole milliseconds, at most the gap.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let wait = ((PUBLISH_GAP - since) * 1000.0).ceil() as u32;
        spawn_local(async move {
            sleep(wait).await;
            if let Some(job) = engine.job(&id)
                && job.publish_due.get()
            {
                engine.publish_now(&job);
            }
        });
    }

    /// Sends the rows of `job` that changed since its last publish.
    pub(super) fn publish_now(&self, job: &Job) {
        job.publish_due.set(false);
        job.last_published.set(now_secs());
        let mut changed = Vec::new();
        {
            let mut published = job.published.borrow_mut();
            for row in job.rows() {
                if published.len() <= row.index {
                    published.resize(row.index + 1, None);
                }
                let slot = &mut published[row.index];
                if slot.as_ref() != Some(&row) {
                    changed.push(row.clone());
                    *slot = Some(row);
                }
            }
        }
        if !changed.is_empty() {
            (self.inner.events)(EngineEvent::Rows(changed));
        }
    }

    /// Publishes the rows of a transfer that has no job (yet).
    pub(super) fn publish_alone(&self, transfer: &Transfer) {
        (self.inner.events)(EngineEvent::Rows(rows(
            transfer,
            Around {
                rates: &[],
                saved: &[],
                dismissed: &HashSet::new(),
                route: None,
                lanes: 1,
            },
        )));
    }

    /// Records file `index`'s progress and publishes it at most every [`PROGRESS_INTERVAL`].
    pub(super) fn progress(&self, job: &Job, index: usize) {
        let now = now_secs();
        let due = now - job.last_published.get() >= PROGRESS_INTERVAL;
        let folders = job.transfer.borrow().has_folders();
        // A transfer of folders is one row, whose speed is the whole transfer's: sampled when
        // it is published, as summing thousands of files for every block would cost more than
        // the block.
        let sample = match (folders, due) {
            (false, _) => Some((index, job.transfer.borrow().files[index].done)),
            (true, true) => Some((0, job.transfer.borrow().files.iter().map(|f| f.done).sum())),
            (true, false) => None,
        };
        if let Some((row, done)) = sample
            && let Some(rate) = job.rates.borrow_mut().get_mut(row)
        {
            rate.record(now, done);
        }
        if due {
            self.publish(job);
        }
    }
}
