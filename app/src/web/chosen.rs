//! Files chosen to send, with the folders they sit in: a file picker gives files alone, a
//! folder picker gives each file's path from the chosen folder, and a dropped folder is
//! walked here, which finds its empty subfolders too (a folder picker lists files only).

use ferry_protocol::FileMeta;
use js_sys::{Array, Promise};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{DataTransfer, File, FileList};

use super::{JsError, call_method, files, property, wait};

/// Files to send and where each sits.
#[derive(Clone, Debug, Default)]
pub struct Chosen {
    /// The files, in the order they will be offered.
    pub files: Vec<File>,
    /// Each file's folder, relative to what was chosen ("" for a file chosen alone).
    pub paths: Vec<String>,
    /// Folders chosen that hold no file.
    pub empty_folders: Vec<String>,
}

impl From<Vec<File>> for Chosen {
    /// Files chosen alone, outside any folder.
    fn from(files: Vec<File>) -> Self {
        Self {
            paths: vec![String::new(); files.len()],
            files,
            empty_folders: Vec::new(),
        }
    }
}

impl Chosen {
    /// The files of a picker's list; a folder picker's files keep their folders.
    pub fn from_list(list: &FileList) -> Self {
        let files: Vec<File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        let paths = files
            .iter()
            .map(|file| {
                let relative = property(file, "webkitRelativePath")
                    .as_string()
                    .unwrap_or_default();
                relative
                    .rsplit_once('/')
                    .map(|(folder, _)| folder.to_owned())
                    .unwrap_or_default()
            })
            .collect();
        Self {
            files,
            paths,
            empty_folders: Vec::new(),
        }
    }

    /// Whether there is nothing to send: a folder without a single file is nothing to offer.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// What the offer says of each file.
    pub fn metas(&self) -> Vec<FileMeta> {
        self.files
            .iter()
            .zip(&self.paths)
            .map(|(file, path)| FileMeta {
                path: path.clone(),
                ..files::describe(file)
            })
            .collect()
    }
}

/// A drop's entries, taken while the drop event lasts: its items cannot be read after it.
/// `None` where the browser gives no entries, and the drop's files are all there is.
pub fn dropped_entries(data: &DataTransfer) -> Option<Vec<JsValue>> {
    let items = data.items();
    let mut entries = Vec::new();
    for index in 0..items.length() {
        let Some(item) = items.get(index) else {
            continue;
        };
        if item.kind() != "file" {
            continue;
        }
        let entry = call_method(&item, "webkitGetAsEntry", &[], "reading the drop").ok()?;
        if !entry.is_null() {
            entries.push(entry);
        }
    }
    Some(entries)
}

/// Walks dropped entries: files are chosen with their folders, and folders without files
/// are kept as empty folders.
pub async fn walk(entries: Vec<JsValue>) -> Result<Chosen, JsError> {
    let mut chosen = Chosen::default();
    // Depth first, in the order the browser lists entries; each with its folder's path.
    let mut pending: Vec<(JsValue, String)> = entries
        .into_iter()
        .rev()
        .map(|entry| (entry, String::new()))
        .collect();
    while let Some((entry, folder)) = pending.pop() {
        let name = property(&entry, "name").as_string().unwrap_or_default();
        if property(&entry, "isDirectory").is_truthy() {
            let path = crate::core::paths::join(&folder, &name);
            let children = read_folder(&entry).await?;
            if children.is_empty() {
                chosen.empty_folders.push(path);
                continue;
            }
            pending.extend(
                children
                    .into_iter()
                    .rev()
                    .map(|child| (child, path.clone())),
            );
        } else {
            chosen.files.push(file_of(&entry).await?);
            chosen.paths.push(folder);
        }
    }
    Ok(chosen)
}

/// Every entry of a dropped folder: the reader gives them in batches until one is empty.
async fn read_folder(folder: &JsValue) -> Result<Vec<JsValue>, JsError> {
    let reader = call_method(folder, "createReader", &[], "reading the dropped folder")?;
    let mut all = Vec::new();
    loop {
        let batch = callback_promise(&reader, "readEntries", "reading the dropped folder").await?;
        let batch: Array = batch.unchecked_into();
        if batch.length() == 0 {
            return Ok(all);
        }
        all.extend(batch.iter());
    }
}

/// The file behind a dropped file entry.
async fn file_of(entry: &JsValue) -> Result<File, JsError> {
    let file = callback_promise(entry, "file", "reading a dropped file").await?;
    Ok(file.unchecked_into())
}

/// Calls `object.method(success, failure)`, the entries API's style, as a promise.
async fn callback_promise(
    object: &JsValue,
    method: &str,
    context: &'static str,
) -> Result<JsValue, JsError> {
    let mut called = Ok(JsValue::UNDEFINED);
    let promise = Promise::new(&mut |resolve, reject| {
        called = call_method(object, method, &[&resolve, &reject], context);
    });
    called?;
    wait(promise, context).await
}
