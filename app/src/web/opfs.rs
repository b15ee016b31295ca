//! This tab's folder in the origin-private file system (OPFS), `ferry-incoming/<tab>/`, where
//! received files wait to be handed over as downloads. Each tab holds a Web Lock named after
//! its folder for the page's life. At start-up, a folder whose lock nobody holds is a gone
//! tab's: when that tab left unfinished transfers behind, this page takes the folder over
//! (its lock, and the transfers with it), so partial files belong to the browser profile, not
//! to one tab; otherwise the folder is cleared. Two pages starting at once cannot both take
//! one over: the lock goes to one of them.

use std::collections::HashSet;
use std::rc::Rc;

use futures::StreamExt;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_futures::stream::JsStream;
use web_sys::{
    FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemRemoveOptions,
};

use super::writer::Writer;
use super::{JsError, call_method, log, property, wait};

const INCOMING_FOLDER: &str = "ferry-incoming";
const LOCK_PREFIX: &str = "ferry-tab-";

/// One folder in the origin-private file system: this tab's own, or a gone tab's it took
/// over; all of them share one writer.
#[derive(Clone, Debug)]
pub struct Opfs {
    folder: FileSystemDirectoryHandle,
    /// The worker that writes into the folders, where workers start.
    writer: Option<Rc<Writer>>,
    folders: Rc<Folders>,
}

/// The folders this page has, and the gone tabs whose folders start-up cleared.
#[derive(Debug)]
struct Folders {
    /// Each folder this page holds the lock of, by its tab: its own first.
    held: Vec<(String, FileSystemDirectoryHandle)>,
    /// The tabs whose folders start-up cleared: they are gone for good.
    abandoned: Vec<String>,
}

impl Opfs {
    /// Opens (creating) this tab's folder, holding the tab's lock on it for the page's life;
    /// takes over the folders of gone tabs among `with_transfers` (those that left unfinished
    /// transfers behind) and clears the other gone tabs' folders. `None` where OPFS is missing.
    pub async fn open(
        tab: &str,
        with_transfers: &HashSet<String>,
    ) -> Result<Option<Self>, JsError> {
        let storage = property(&property(&js_sys::global(), "navigator"), "storage");
        if !property(&storage, "getDirectory").is_function() {
            return Ok(None);
        }
        let root: FileSystemDirectoryHandle = wait(
            storage
                .unchecked_ref::<web_sys::StorageManager>()
                .get_directory(),
            "opening the browser's private storage",
        )
        .await?
        .unchecked_into();
        let create = FileSystemGetDirectoryOptions::new();
        create.set_create(true);
        let incoming: FileSystemDirectoryHandle = wait(
            root.get_directory_handle_with_options(INCOMING_FOLDER, &create),
            "opening the incoming folder",
        )
        .await?
        .unchecked_into();
        let held = hold_lock(tab).await;
        let (adopted, abandoned) = if held {
            take_over_or_clear(&incoming, tab, with_transfers).await
        } else {
            (Vec::new(), Vec::new())
        };
        let folder: FileSystemDirectoryHandle = wait(
            incoming.get_directory_handle_with_options(tab, &create),
            "opening this tab's incoming folder",
        )
        .await?
        .unchecked_into();
        let writer = match Writer::start() {
            Ok(writer) => Some(Rc::new(writer)),
            Err(error) => {
                log(&format!("Ferry writes through streams: {error}"));
                None
            }
        };
        let mut folders = vec![(tab.to_owned(), folder.clone())];
        folders.extend(adopted);
        Ok(Some(Self {
            folder,
            writer,
            folders: Rc::new(Folders {
                held: folders,
                abandoned,
            }),
        }))
    }

    /// The tabs whose folders start-up cleared, so what else they kept can go too.
    pub fn abandoned(&self) -> &[String] {
        &self.folders.abandoned
    }

    /// The tabs whose folders this page holds: its own, and the gone ones it took over.
    pub fn tabs(&self) -> Vec<String> {
        self.folders
            .held
            .iter()
            .map(|(tab, _)| tab.clone())
            .collect()
    }

    /// The folder of `tab`, one this page holds, to read and write there.
    pub fn of_tab(&self, tab: &str) -> Option<Self> {
        let (_, folder) = self.folders.held.iter().find(|(held, _)| held == tab)?;
        Some(Self {
            folder: folder.clone(),
            ..self.clone()
        })
    }

    /// The names of the files in this folder.
    pub async fn entries(&self) -> Vec<String> {
        let mut names = JsStream::from(self.folder.keys());
        let mut entries = Vec::new();
        while let Some(Ok(name)) = names.next().await {
            entries.extend(name.as_string());
        }
        entries
    }

    /// Creates the file `entry` in this folder, or opens it where it exists.
    pub async fn create(&self, entry: &str) -> Result<FileSystemFileHandle, JsError> {
        let create = FileSystemGetFileOptions::new();
        create.set_create(true);
        Ok(wait(
            self.folder.get_file_handle_with_options(entry, &create),
            "creating the incoming file",
        )
        .await?
        .unchecked_into())
    }

    /// The worker that writes into the folders, where one started.
    pub fn writer(&self) -> Option<Rc<Writer>> {
        self.writer.clone()
    }

    /// How many more bytes the browser lets this page store (its quota less what it uses),
    /// where the browser says. Chromium derives the quota from the disk's size and its free
    /// space, Firefox from the free space, so an offer larger than this would fail part way.
    pub async fn room() -> Option<u64> {
        let storage = property(&property(&js_sys::global(), "navigator"), "storage");
        let estimate = call_method(&storage, "estimate", &[], "estimating free space").ok()?;
        let estimate = wait(estimate.unchecked_into(), "estimating free space")
            .await
            .ok()?;
        let quota = property(&estimate, "quota").as_f64()?;
        let usage = property(&estimate, "usage").as_f64().unwrap_or(0.0);
        // Both are whole byte counts well inside f64's exact integers.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some((quota - usage).max(0.0) as u64)
    }

    /// Deletes one entry of this folder, if it exists.
    pub async fn remove(&self, entry: &str) {
        let _ = wait(self.folder.remove_entry(entry), "deleting a received file").await;
    }
}

/// Takes the Web Lock that marks `tab`'s folder as in use, for the rest of the page's life.
/// Returns false where Web Locks are missing (then no folder counts as abandoned).
async fn hold_lock(tab: &str) -> bool {
    let locks = property(&property(&js_sys::global(), "navigator"), "locks");
    if !property(&locks, "request").is_function() {
        return false;
    }
    // The callback returns a promise that never settles, so the lock is held until the page
    // goes; a JavaScript function, so no Rust closure has to outlive everything.
    let forever = js_sys::Function::new_no_args("return new Promise(() => {});");
    let name = JsValue::from_str(&format!("{LOCK_PREFIX}{tab}"));
    call_method(
        &locks,
        "request",
        &[&name, &forever],
        "locking this tab's folder",
    )
    .is_ok()
}

/// Takes over the folders of gone tabs (whose lock nobody holds any more) that left
/// transfers behind (`with_transfers`), and clears the other gone tabs' folders; returns the
/// folders taken over, and the tabs whose folders were cleared.
async fn take_over_or_clear(
    incoming: &FileSystemDirectoryHandle,
    tab: &str,
    with_transfers: &HashSet<String>,
) -> (Vec<(String, FileSystemDirectoryHandle)>, Vec<String>) {
    let locks = property(&property(&js_sys::global(), "navigator"), "locks");
    let Ok(query) = call_method(&locks, "query", &[], "listing tabs") else {
        return (Vec::new(), Vec::new());
    };
    let Ok(snapshot) = wait(query.unchecked_into(), "listing tabs").await else {
        return (Vec::new(), Vec::new());
    };
    let held: Vec<String> = js_sys::Array::from(&property(&snapshot, "held"))
        .iter()
        .filter_map(|lock| property(&lock, "name").as_string())
        .collect();
    let mut names = JsStream::from(incoming.keys());
    let mut gone = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        let Some(name) = name.as_string() else {
            continue;
        };
        if name != tab && !held.contains(&format!("{LOCK_PREFIX}{name}")) {
            gone.push(name);
        }
    }
    let mut adopted = Vec::new();
    let mut abandoned = Vec::new();
    for name in gone {
        if with_transfers.contains(&name) {
            // Another page starting at the same time may take it first; then it is that
            // page's, and left alone here.
            if try_lock(&name).await
                && let Ok(folder) = wait(
                    incoming.get_directory_handle(&name),
                    "opening a gone tab's folder",
                )
                .await
            {
                log(&format!(
                    "took over the transfers a closed tab left ({name})"
                ));
                adopted.push((name, folder.unchecked_into()));
            }
            continue;
        }
        let recursive = FileSystemRemoveOptions::new();
        recursive.set_recursive(true);
        let _ = JsFuture::from(incoming.remove_entry_with_options(&name, &recursive)).await;
        abandoned.push(name);
    }
    (adopted, abandoned)
}

/// Takes the lock of `tab`'s folder for the rest of the page's life, if nobody holds it now.
async fn try_lock(tab: &str) -> bool {
    let locks = property(&property(&js_sys::global(), "navigator"), "locks");
    // The lock's callback settles the outer promise with whether the lock was granted, and
    // holds a granted one with a promise that never settles; JavaScript functions, so no
    // Rust closure has to outlive everything.
    let take = js_sys::Function::new_with_args(
        "locks, name",
        "return new Promise((granted) => locks.request(name, { ifAvailable: true }, (lock) => {\
           granted(lock !== null);\
           return lock === null ? undefined : new Promise(() => {});\
         }));",
    );
    let name = JsValue::from_str(&format!("{LOCK_PREFIX}{tab}"));
    let Ok(promise) = take.call2(&JsValue::NULL, &locks, &name) else {
        return false;
    };
    wait(promise.unchecked_into(), "taking over a gone tab's folder")
        .await
        .is_ok_and(|granted| granted.is_truthy())
}
