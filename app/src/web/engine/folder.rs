//! A received folder handed over whole: written into the folder the user picked (its empty
//! subfolders made too), or, when its files were kept in private storage or memory, offered
//! as one `.zip` download assembled from those very files ([`crate::core::zip`]).

use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsValue;
use web_sys::{Blob, BlobPropertyBag, FileSystemDirectoryHandle};

use super::receiving::Receiving;
use super::storage::Received;
use super::{Engine, Job};
use crate::core::filename::sanitize;
use crate::core::paths::join;
use crate::core::zip::{Checksums, Entry, Part, layout};
use crate::web::files::{self, SliceReader};
use crate::web::sink::subfolder;
use crate::web::{Context, JsError, log};
use ferry_protocol::BLOCK_SIZE;

impl Engine {
    /// Receiver: makes the offer's empty folders in the folder the user picked.
    pub(super) async fn make_empty_folders(
        &self,
        job: &Job,
        root: &FileSystemDirectoryHandle,
    ) -> Result<(), JsError> {
        let folders = job.transfer.borrow().empty_folders().to_vec();
        for path in folders {
            subfolder(root, &path).await?;
        }
        Ok(())
    }

    /// Receiver: once every file of a folder kept for download is whole, offers the folder as
    /// one zip; a zip that cannot be made fails the folder's row, saying why.
    pub(super) async fn deliver_folder(&self, rx: &Receiving) {
        let job = &rx.job;
        let whole = {
            let transfer = job.transfer.borrow();
            !rx.to_picked() && transfer.has_folders() && transfer.is_complete()
        };
        if !whole {
            return;
        }
        match self.zip(job, &rx.crcs).await {
            Ok(zip) => {
                if self.inner.config.auto_download
                    && let Some(url) = &zip.url
                    && let Err(error) = files::download(url, &zip.name)
                {
                    log(&error.to_string());
                }
                *job.zip.borrow_mut() = Some(zip);
                // The benchmark reads this mark to time a folder from Accept to its zip.
                crate::web::mark("ferry:zipped");
            }
            Err(error) => {
                let reason = format!("could not make the zip: {error}");
                log(&reason);
                job.transfer.borrow_mut().delivery_failed(&reason);
                self.publish(job);
            }
        }
    }

    /// The folder's zip: its records around the received files, which it refers to rather
    /// than copies.
    async fn zip(&self, job: &Job, crcs: &Checksums) -> Result<Received, JsError> {
        let (metas, empty_folders, top) = {
            let transfer = job.transfer.borrow();
            let metas: Vec<_> = transfer.files.iter().map(|f| f.meta.clone()).collect();
            let top = transfer
                .top_folder()
                .unwrap_or_else(|| format!("Files from {}", transfer.peer));
            (metas, transfer.empty_folders().to_vec(), top)
        };
        // Every file is kept by now: in memory, or as its slice of the pack.
        let blobs: Vec<Blob> = job
            .received
            .borrow()
            .iter()
            .map(|received| received.as_ref().map(Received::blob))
            .collect::<Option<_>>()
            .ok_or_else(|| JsError::plain("zipping", "a file is missing"))?;
        let mut entries = Vec::with_capacity(metas.len() + empty_folders.len());
        let mut reader = SliceReader::default();
        let mut buffer = Vec::new();
        for (index, (meta, blob)) in metas.iter().zip(&blobs).enumerate() {
            // Known from the blocks as they were checked; read again only for files that
            // arrived before this page was reloaded.
            let known = u32::try_from(index)
                .ok()
                .and_then(|file| crcs.of(file, meta.size));
            let crc = match known {
                Some(crc) => crc,
                None => crc_of(&mut reader, &mut buffer, blob, meta.size).await?,
            };
            entries.push(Entry::File {
                path: join(&meta.path, &meta.name),
                size: meta.size,
                crc,
                index,
            });
        }
        entries.extend(empty_folders.iter().cloned().map(Entry::Folder));
        #[allow(clippy::cast_possible_truncation)]
        let now = (js_sys::Date::now() / 1000.0) as i64;
        let parts =
            layout(&entries, now).map_err(|error| JsError::plain("zipping", error.to_string()))?;
        let sequence: Array = parts
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => JsValue::from(Uint8Array::from(bytes.as_slice())),
                Part::File(index) => JsValue::from(&blobs[*index]),
            })
            .collect();
        let options = BlobPropertyBag::new();
        options.set_type("application/zip");
        let blob = Blob::new_with_blob_sequence_and_options(&sequence, &options)
            .context("assembling the zip")?;
        let name = sanitize(&format!("{top}.zip"));
        let url = Some(files::object_url(&blob)?);
        Ok(Received {
            blob,
            url,
            name,
            entry: None,
        })
    }
}

/// The CRC-32 of `blob`'s `size` bytes, read a block at a time into `buffer`.
async fn crc_of(
    reader: &mut SliceReader,
    buffer: &mut Vec<u8>,
    blob: &Blob,
    size: u64,
) -> Result<u32, JsError> {
    let mut crc = crc32fast::Hasher::new();
    let mut start = 0;
    while start < size {
        let end = size.min(start + u64::from(BLOCK_SIZE));
        let view = reader.read(blob, start, end).await?;
        buffer.resize(view.length() as usize, 0);
        view.copy_to(buffer);
        crc.update(buffer);
        start = end;
    }
    Ok(crc.finalize())
}
