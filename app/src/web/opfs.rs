//! This tab's folder in the origin-private file system (OPFS), `ferry-incoming/<tab>/`, where
//! received files wait to be handed over as downloads. Each tab holds a Web Lock named after
//! its folder, so start-up clears the folders of tabs that are gone without touching a tab
//! that is still open.

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

/// This tab's folder in the origin-private file system.
#[derive(Clone, Debug)]
pub struct Opfs {
    folder: FileSystemDirectoryHandle,
    /// The worker that writes into the folder, where workers start.
    writer: Option<Rc<Writer>>,
    /// The tabs whose folders start-up cleared: they are gone for good.
    abandoned: Rc<Vec<String>>,
}

impl Opfs {
    /// Opens (creating) this tab's folder, holding the tab's lock on it for the page's life
    /// and clearing the folders of tabs that are gone. `None` where OPFS is missing.
    pub async fn open(tab: &str) -> Result<Option<Self>, JsError> {
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
        let abandoned = if held {
            clear_abandoned(&incoming, tab).await
        } else {
            Vec::new()
        };
        let folder = wait(
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
        Ok(Some(Self {
            folder,
            writer,
            abandoned: Rc::new(abandoned),
        }))
    }

    /// The tabs whose folders start-up cleared, so what else they kept can go too.
    pub fn abandoned(&self) -> &[String] {
        &self.abandoned
    }

    /// The names of the files in this tab's folder.
    pub async fn entries(&self) -> Vec<String> {
        let mut names = JsStream::from(self.folder.keys());
        let mut entries = Vec::new();
        while let Some(Ok(name)) = names.next().await {
            entries.extend(name.as_string());
        }
        entries
    }

    /// Creates the file `entry` in this tab's folder, or opens it where it exists.
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

    /// The worker that writes into this folder, where one started.
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

    /// Deletes one entry of this tab's folder, if it exists.
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

/// Removes the folders of tabs whose lock nobody holds any more; returns those tabs.
async fn clear_abandoned(incoming: &FileSystemDirectoryHandle, tab: &str) -> Vec<String> {
    let locks = property(&property(&js_sys::global(), "navigator"), "locks");
    let Ok(query) = call_method(&locks, "query", &[], "listing tabs") else {
        return Vec::new();
    };
    let Ok(snapshot) = wait(query.unchecked_into(), "listing tabs").await else {
        return Vec::new();
    };
    let held: Vec<String> = js_sys::Array::from(&property(&snapshot, "held"))
        .iter()
        .filter_map(|lock| property(&lock, "name").as_string())
        .collect();
    let mut names = JsStream::from(incoming.keys());
    let mut abandoned = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        let Some(name) = name.as_string() else {
            continue;
        };
        if name != tab && !held.contains(&format!("{LOCK_PREFIX}{name}")) {
            abandoned.push(name);
        }
    }
    let recursive = FileSystemRemoveOptions::new();
    recursive.set_recursive(true);
    for name in &abandoned {
        let _ = JsFuture::from(incoming.remove_entry_with_options(name, &recursive)).await;
    }
    abandoned
}
