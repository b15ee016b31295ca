//! Where received files go and stay: the tab's folder in the origin-private file system,
//! opened once (clearing what closed tabs left behind), the verified files kept for
//! "Save NAME", and their removal when a row is cleared or the page goes.

use std::cell::RefCell;

use ferry_protocol::TransferId;
use wasm_bindgen_futures::spawn_local;
use web_sys::Blob;

use super::records::tabs_with_transfers;
use super::{Engine, EngineEvent, Job};
use crate::core::rows::row_key;
use crate::web::sink::{Finished, Opfs, Picked};
use crate::web::{files, log, prefs, random_bytes};

/// The user's answer to an offer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Receive into private storage and hand each file over as a download.
    Download,
    /// Receive straight into what the user picked.
    SaveTo(Picked),
    /// No, thanks.
    Decline,
}

/// The private file system, once it is known whether the browser has one.
pub(super) struct Storage {
    /// Names this tab's folder, so another tab's cleanup leaves it alone.
    tab: String,
    opfs: RefCell<Option<Option<Opfs>>>,
}

/// A verified file kept for "Save NAME".
pub(super) struct Received {
    pub(super) blob: Blob,
    /// The `blob:` URL "Save NAME" offers; none for a folder's files, whose row saves the zip.
    pub(super) url: Option<String>,
    pub(super) name: String,
    /// The private file behind `blob`, to delete when the row goes.
    pub(super) entry: Option<String>,
}

/// Where this tab keeps its folder's name, so a reload finds its partial files again.
const TAB_KEY: &str = "ferry-tab";

impl Storage {
    pub(super) fn new() -> Self {
        let tab = prefs::tab_text(TAB_KEY).unwrap_or_else(|| {
            let tab = crate::web::hex(&random_bytes::<8>());
            prefs::set_tab_text(TAB_KEY, &tab);
            tab
        });
        Self {
            tab,
            opfs: RefCell::new(None),
        }
    }

    /// This tab's folder's name.
    pub(super) fn tab(&self) -> &str {
        &self.tab
    }
}

impl Received {
    pub(super) fn blob(&self) -> Blob {
        self.blob.clone()
    }
}

impl Engine {
    /// Offers a received file as a download again.
    pub fn save_again(&self, id: &TransferId, index: usize) {
        let Some(job) = self.job(id) else {
            return;
        };
        // A transfer of folders is one row, which offers the folder's zip.
        let zip = job.zip.borrow();
        let received = job.received.borrow();
        let saved = match zip.as_ref() {
            Some(zip) => Some(zip),
            None => received.get(index).and_then(Option::as_ref),
        };
        if let Some(saved) = saved
            && let Some(url) = &saved.url
            && let Err(error) = files::download(url, &saved.name)
        {
            log(&error.to_string());
        }
    }

    /// Removes a finished file's row and deletes its private copy; the transfer is forgotten
    /// with its last row.
    pub fn dismiss(&self, id: &TransferId, index: usize) {
        let Some(job) = self.job(id) else {
            // A row of a transfer that was discarded before it was taken up again after a
            // reload: nothing else is left of it.
            (self.inner.events)(EngineEvent::Removed(row_key(id, index)));
            return;
        };
        // A transfer of folders is one row: clearing it clears every file.
        let indexes: Vec<usize> = if job.transfer.borrow().has_folders() {
            (0..job.transfer.borrow().files.len()).collect()
        } else {
            vec![index]
        };
        let running = indexes.iter().any(|&index| {
            job.transfer
                .borrow()
                .files
                .get(index)
                .is_none_or(|file| file.status.is_running())
        });
        if running || !job.dismissed.borrow_mut().insert(index) {
            return;
        }
        job.dismissed.borrow_mut().extend(indexes.iter().copied());
        let mut received: Vec<Received> = indexes
            .iter()
            .filter_map(|&index| {
                job.received
                    .borrow_mut()
                    .get_mut(index)
                    .and_then(Option::take)
            })
            .collect();
        received.extend(job.zip.borrow_mut().take());
        if job.dismissed.borrow().len() == job.transfer.borrow().files.len() {
            self.inner.jobs.borrow_mut().remove(id);
        }
        for file in received {
            if let Some(url) = &file.url {
                files::revoke(url);
            }
            if let Some(entry) = file.entry {
                self.remove_private(entry);
            }
        }
        (self.inner.events)(EngineEvent::Removed(row_key(id, index)));
    }

    /// The verified bytes of file `index` of transfer `id`, while its row exists.
    pub fn received_file(&self, id: &TransferId, index: usize) -> Option<Blob> {
        let job = self.job(id)?;
        let received = job.received.borrow();
        received.get(index)?.as_ref().map(Received::blob)
    }

    /// A received folder's zip and its name, once every file of it arrived (tests).
    pub fn received_zip(&self, id: &TransferId) -> Option<(Blob, String)> {
        let job = self.job(id)?;
        let zip = job.zip.borrow();
        zip.as_ref().map(|zip| (zip.blob(), zip.name.clone()))
    }

    /// The tab's private folder, opened on first use (taking over what closed tabs left
    /// unfinished, and clearing the rest they left); `None` where the browser has none.
    pub(super) async fn opfs(&self) -> Option<Opfs> {
        if let Some(known) = &*self.inner.storage.opfs.borrow() {
            return known.clone();
        }
        let opfs = match Opfs::open(&self.inner.storage.tab, &tabs_with_transfers()).await {
            Ok(opfs) => opfs,
            Err(error) => {
                log(&format!("private storage unavailable: {error}"));
                None
            }
        };
        *self.inner.storage.opfs.borrow_mut() = Some(opfs.clone());
        opfs
    }

    /// The private folder of tab `folder` (one this page took over), or this page's own.
    pub(super) async fn opfs_of(&self, folder: Option<&str>) -> Option<Opfs> {
        let opfs = self.opfs().await?;
        match folder {
            Some(tab) => opfs.of_tab(tab),
            None => Some(opfs),
        }
    }

    /// Deletes private file `entry`, in the background.
    pub(super) fn remove_private(&self, entry: String) {
        let engine = self.clone();
        spawn_local(async move {
            if let Some(opfs) = engine.opfs().await {
                opfs.remove(&entry).await;
            }
        });
    }

    /// Deletes every private file this tab holds, at once.
    pub(super) fn forget_files(&self) {
        let Some(Some(opfs)) = self.inner.storage.opfs.borrow().clone() else {
            return;
        };
        let entries: Vec<String> = self
            .inner
            .jobs
            .borrow()
            .values()
            .flat_map(|job| {
                job.received
                    .borrow()
                    .iter()
                    .flatten()
                    .filter_map(|file| file.entry.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        spawn_local(async move {
            for entry in entries {
                opfs.remove(&entry).await;
            }
        });
    }

    /// Keeps a verified file for "Save NAME" and, in the app, downloads it at once.
    pub(super) fn keep(&self, job: &Job, index: usize, finished: Finished) {
        let Finished::Download { blob, entry } = finished else {
            return;
        };
        let name = job.transfer.borrow().files[index].meta.name.clone();
        // A folder's files go as one zip once all are in ([`Engine::deliver_folder`]), and its
        // one row saves that: no file of it needs a URL of its own.
        let url = if job.transfer.borrow().has_folders() {
            None
        } else {
            match files::object_url(&blob) {
                Ok(url) => Some(url),
                Err(error) => return log(&error.to_string()),
            }
        };
        if self.inner.config.auto_download
            && let Some(url) = &url
            && let Err(error) = files::download(url, &name)
        {
            log(&error.to_string());
        }
        if let Some(slot) = job.received.borrow_mut().get_mut(index) {
            *slot = Some(Received {
                blob,
                url,
                name,
                entry,
            });
        }
    }
}
