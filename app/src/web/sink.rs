//! Where received bytes go, as they arrive: never an ever-growing array of chunks.
//!
//! 1. A file the user picked with `showSaveFilePicker` (or in a folder from
//!    `showDirectoryPicker`): bytes go straight to its `FileSystemWritableFileStream`.
//! 2. By default, a file in this tab's folder of the origin-private file system ([`Opfs`]),
//!    written by the page's [`Writer`] worker where the browser has sync access handles and
//!    through a writable stream elsewhere; once verified it is handed to the browser as a
//!    download and deleted when its row is dismissed or the page goes.
//! 3. Memory, only where neither exists, up to [`MEMORY_LIMIT`] bytes, told to the user.

use std::rc::Rc;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, FileSystemCreateWritableOptions, FileSystemDirectoryHandle,
    FileSystemFileHandle, FileSystemGetDirectoryOptions, FileSystemGetFileOptions,
    FileSystemWritableFileStream, WriteCommandType, WriteParams,
};

pub use super::opfs::Opfs;
use super::writer::{Writer, WriterFile};
use super::{Context, JsError, call_method, log, property, wait};
use crate::core::filename::numbered;

/// The most bytes one offer may hold when it can only be received into memory.
pub const MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

/// Whether this browser has the File System Access save picker.
pub fn has_save_picker() -> bool {
    property(&js_sys::global(), "showSaveFilePicker").is_function()
}

/// What the user picked up front with "Choose where to save…".
#[derive(Clone, Debug)]
pub enum Picked {
    /// One file's handle, for a one-file offer.
    File(FileSystemFileHandle),
    /// A folder, for an offer of several files.
    Folder(FileSystemDirectoryHandle),
}

/// Asks where to save: a save dialog for `one_file` (its name), a folder otherwise. `None`
/// when the user dismissed the picker.
pub async fn pick_location(one_file: Option<&str>) -> Result<Option<Picked>, JsError> {
    let window = js_sys::global();
    let picked = if let Some(name) = one_file {
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"suggestedName".into(), &name.into());
        call_method(
            &window,
            "showSaveFilePicker",
            &[&options],
            "opening the save dialog",
        )
        .map(|promise| promise.unchecked_into::<Promise>())
    } else {
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"mode".into(), &"readwrite".into());
        call_method(
            &window,
            "showDirectoryPicker",
            &[&options],
            "opening the folder dialog",
        )
        .map(|promise| promise.unchecked_into::<Promise>())
    }?;
    match wait(picked, "choosing where to save").await {
        Ok(handle) if one_file.is_some() => Ok(Some(Picked::File(handle.unchecked_into()))),
        Ok(handle) => Ok(Some(Picked::Folder(handle.unchecked_into()))),
        Err(error) if error.is_abort() => Ok(None),
        Err(error) => Err(error),
    }
}

/// An open destination for one received file.
#[derive(Debug)]
pub struct Sink {
    target: Target,
}

#[derive(Debug)]
enum Target {
    Stream {
        stream: FileSystemWritableFileStream,
        handle: FileSystemFileHandle,
        /// The OPFS folder and entry name, when this is a private file to clean up later.
        private: Option<(Opfs, String)>,
    },
    /// A private file written by the page's worker.
    Worker {
        writer: Rc<Writer>,
        file: WriterFile,
        handle: FileSystemFileHandle,
        opfs: Opfs,
        entry: String,
    },
    Memory(Vec<u8>),
}

/// A received, verified file, ready to be handed over.
#[derive(Debug)]
pub enum Finished {
    /// Written where the user chose; nothing more to do.
    Saved,
    /// In private storage or memory, to be offered as a download; `entry` names the OPFS file
    /// to delete later.
    Download {
        /// The file's bytes.
        blob: Blob,
        /// The OPFS entry behind `blob`, if any.
        entry: Option<String>,
    },
}

impl Sink {
    /// A new private file `entry` in this tab's OPFS folder.
    pub async fn private(opfs: &Opfs, entry: &str) -> Result<Self, JsError> {
        let handle = opfs.create(entry).await?;
        if let Some(writer) = opfs.writer() {
            match writer.open(&handle).await {
                Ok(file) => {
                    return Ok(Self {
                        target: Target::Worker {
                            writer,
                            file,
                            handle,
                            opfs: opfs.clone(),
                            entry: entry.to_owned(),
                        },
                    });
                }
                // Older browsers have workers but no sync access handles; streams still work.
                Err(error) => log(&format!("Ferry writes through a stream: {error}")),
            }
        }
        // The private file may hold blocks from before a reload, which stay.
        let stream = writable(&handle, true).await?;
        Ok(Self {
            target: Target::Stream {
                stream,
                handle,
                private: Some((opfs.clone(), entry.to_owned())),
            },
        })
    }

    /// The file the user picked, or `name` in folder `path` inside the folder they picked
    /// ("name (2)" and so on when a file of that name is already there: the user chose the
    /// folder, not to replace what it holds).
    pub async fn picked(picked: &Picked, path: &str, name: &str) -> Result<Self, JsError> {
        let handle = match picked {
            Picked::File(handle) => handle.clone(),
            Picked::Folder(root) => {
                let folder = &subfolder(root, path).await?;
                let mut n = 1;
                loop {
                    let found = wait(
                        folder.get_file_handle(&numbered(name, n)),
                        "looking into the chosen folder",
                    )
                    .await;
                    // A file or a folder of that name takes it; any other answer (mostly "not
                    // found") ends the search, and creating the file reports a real problem.
                    let taken = match found {
                        Ok(_) => true,
                        Err(error) => error.message.ends_with("(TypeMismatchError)"),
                    };
                    if !taken {
                        break;
                    }
                    n += 1;
                }
                let create = FileSystemGetFileOptions::new();
                create.set_create(true);
                wait(
                    folder.get_file_handle_with_options(&numbered(name, n), &create),
                    "creating the file in the chosen folder",
                )
                .await?
                .unchecked_into()
            }
        };
        let stream = writable(&handle, false).await?;
        Ok(Self {
            target: Target::Stream {
                stream,
                handle,
                private: None,
            },
        })
    }

    /// A buffer in memory for a file of `size` bytes (at most [`MEMORY_LIMIT`]).
    pub fn memory(size: u64) -> Self {
        let capacity = usize::try_from(size.min(MEMORY_LIMIT)).unwrap_or(0);
        Self {
            target: Target::Memory(Vec::with_capacity(capacity)),
        }
    }

    /// Writes each of `parts` (a position in the file and the bytes that go there); resolves
    /// once the browser has taken them. Blocks are written as they pass their checks, in
    /// whatever order that is, as the chunks they arrived in: joining them first would cost
    /// a copy and a fresh buffer per block. The parts' buffers may be handed to the writer
    /// worker, so the caller must not use them afterwards.
    pub async fn write(&mut self, parts: &[(u64, Uint8Array)]) -> Result<(), JsError> {
        match &mut self.target {
            Target::Stream { stream, .. } => {
                for (position, bytes) in parts {
                    let params = WriteParams::new(WriteCommandType::Write);
                    // File offsets are doubles to the browser; every size it handles is exact.
                    #[allow(clippy::cast_precision_loss)]
                    params.set_position(Some(*position as f64));
                    params.set_data_opt_u8_array(Some(bytes));
                    let promise = stream
                        .write_with_write_params(&params)
                        .context("writing the received file")?;
                    wait(promise, "writing the received file").await?;
                }
                Ok(())
            }
            Target::Worker { writer, file, .. } => writer.write(*file, parts).await,
            Target::Memory(buffer) => {
                for (position, bytes) in parts {
                    let start = usize::try_from(*position).unwrap_or(usize::MAX);
                    let end = start.saturating_add(bytes.length() as usize);
                    if buffer.len() < end {
                        buffer.resize(end, 0);
                    }
                    bytes.copy_to(&mut buffer[start..end]);
                }
                Ok(())
            }
        }
    }

    /// Flushes and closes the file; what is left to do with it.
    pub async fn finish(self, mime: &str) -> Result<Finished, JsError> {
        match self.target {
            Target::Stream {
                stream,
                handle,
                private,
            } => {
                wait(stream.close(), "saving the received file").await?;
                let Some((_, entry)) = private else {
                    return Ok(Finished::Saved);
                };
                let file = wait(handle.get_file(), "reading the received file").await?;
                Ok(Finished::Download {
                    blob: file.unchecked_into(),
                    entry: Some(entry),
                })
            }
            Target::Worker {
                writer,
                file,
                handle,
                entry,
                ..
            } => {
                writer.close(file).await?;
                let file = wait(handle.get_file(), "reading the received file").await?;
                Ok(Finished::Download {
                    blob: file.unchecked_into(),
                    entry: Some(entry),
                })
            }
            Target::Memory(buffer) => {
                let parts = js_sys::Array::of1(&Uint8Array::from(buffer.as_slice()));
                let options = BlobPropertyBag::new();
                options.set_type(mime);
                let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)
                    .context("assembling the received file")?;
                Ok(Finished::Download { blob, entry: None })
            }
        }
    }

    /// Throws the partial file away: aborts the write (a picked file keeps its old content)
    /// and deletes a private file at once.
    pub async fn discard(self) {
        match self.target {
            Target::Stream {
                stream, private, ..
            } => {
                let _ = JsFuture::from(stream.abort()).await;
                if let Some((opfs, entry)) = private {
                    opfs.remove(&entry).await;
                }
            }
            Target::Worker {
                writer,
                file,
                opfs,
                entry,
                ..
            } => {
                writer.abort(file).await;
                opfs.remove(&entry).await;
            }
            Target::Memory(_) => {}
        }
    }
}

/// Folder `path` ("a/b", made safe) inside `root`, made where missing.
pub async fn subfolder(
    root: &FileSystemDirectoryHandle,
    path: &str,
) -> Result<FileSystemDirectoryHandle, JsError> {
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    let mut folder = root.clone();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        folder = wait(
            folder.get_directory_handle_with_options(part, &create),
            "creating a folder in the chosen folder",
        )
        .await?
        .unchecked_into();
    }
    Ok(folder)
}

/// Opens `handle` for writing; with `keep`, what the file holds stays until overwritten
/// (otherwise the stream starts empty and replaces the file when closed).
async fn writable(
    handle: &FileSystemFileHandle,
    keep: bool,
) -> Result<FileSystemWritableFileStream, JsError> {
    let options = FileSystemCreateWritableOptions::new();
    options.set_keep_existing_data(keep);
    Ok(wait(
        handle.create_writable_with_options(&options),
        "opening the file for writing",
    )
    .await?
    .unchecked_into())
}
