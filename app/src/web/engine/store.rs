//! The receiver's checks and writes: a block that has all its bytes and its digest is hashed,
//! and written at its place and acknowledged, or asked for again; a file whose blocks are all
//! checked and whose digest matches is flushed and handed over.
//!
//! A transfer of folders kept in private storage writes all its files into one private file,
//! each at its own offset (a pack): a folder of thousands of small files would otherwise cost
//! the browser a file to create, open and close for each. The files are handed over as slices
//! of the pack once all are in, which is when the folder's zip is made of them.

use std::collections::hash_map::Entry;
use std::rc::Rc;

use ferry_protocol::TransferMessage;
use js_sys::Uint8Array;

use super::receiving::{PACK, Receiving, Target, pack_entry};
use super::{Engine, Job};
use crate::core::blocks::{Verdict, block_count};
use crate::core::rows::row_key;
use crate::core::transfer::TransferError;
use crate::web::JsError;
use crate::web::sink::{Finished, Sink};

impl Engine {
    /// Block `block` of file `file` has all its bytes and its digest: hashes it, and writes
    /// and acknowledges it, or asks for it again.
    pub(super) async fn check(
        &self,
        rx: &mut Receiving,
        file: u32,
        block: u32,
    ) -> Result<(), TransferError> {
        let job = Rc::clone(&rx.job);
        let size = job.transfer.borrow().files[file as usize].meta.size;
        let (digest, chunks) = rx.assemble(file, size, block);
        let verdict = job.transfer.borrow_mut().check_block(file, block, digest)?;
        match verdict {
            Verdict::Resend => {
                let _ = job.control().send(&TransferMessage::Resend { file, block });
                Ok(())
            }
            Verdict::Good { .. } => {
                if job.transfer.borrow().has_folders() {
                    rx.crcs.add(file, block, block_count(size), &rx.block);
                }
                self.write_block(rx, file, chunks).await?;
                job.transfer.borrow_mut().block_stored(file, block);
                let _ = job.control().send(&TransferMessage::Stored { file, block });
                if rx.record_due() {
                    self.save_record(&job);
                }
                self.progress(&job, file as usize);
                let whole = job.transfer.borrow_mut().whole(file as usize)?;
                if let Some(file) = whole {
                    self.finish(rx, file).await?;
                }
                Ok(())
            }
        }
    }

    /// Writes the `chunks` of a checked block of file `file` at their places: into the
    /// file's sink, or the transfer's pack, opened on first use.
    async fn write_block(
        &self,
        rx: &mut Receiving,
        file: u32,
        chunks: Vec<(u64, Uint8Array)>,
    ) -> Result<(), JsError> {
        let (slot, base) = match &rx.pack {
            Some(bases) => (PACK, bases[file as usize]),
            None => (file, 0),
        };
        let sink = match rx.sinks.entry(slot) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(closed) => {
                closed.insert(self.open_sink(&rx.job, &rx.target, slot).await?)
            }
        };
        if base == 0 {
            return sink.write(&chunks).await;
        }
        let placed: Vec<(u64, Uint8Array)> = chunks
            .into_iter()
            .map(|(offset, bytes)| (base + offset, bytes))
            .collect();
        sink.write(&placed).await
    }

    /// File `index` is whole and checked: flushes it, keeps it and tells the sender.
    pub(super) async fn finish(
        &self,
        rx: &mut Receiving,
        index: usize,
    ) -> Result<(), TransferError> {
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        if rx.pack.is_some() {
            return self.finish_in_pack(rx, file).await;
        }
        let job = Rc::clone(&rx.job);
        let sink = match rx.sinks.remove(&file) {
            Some(sink) => sink,
            // An empty file had no block to open its sink.
            None => self.open_sink(&job, &rx.target, file).await?,
        };
        self.publish(&job);
        let mime = job.transfer.borrow().files[index].meta.mime.clone();
        let finished = sink.finish(&mime).await;
        // Cancelled, or cut off, while the file was flushed: its row says so, so it is not
        // handed over. (A file written where the user chose stays there, whole and checked;
        // the browser offers no way to delete it.)
        if job.transfer.borrow().is_ended() {
            if let Ok(Finished::Download {
                entry: Some(entry), ..
            }) = finished
            {
                self.remove_private(entry);
            }
            return Ok(());
        }
        self.keep(&job, index, finished?);
        job.transfer.borrow_mut().complete_file(file)?;
        let _ = job
            .control()
            .send(&TransferMessage::FileVerified { index: file });
        self.publish(&job);
        self.deliver_folder(rx).await;
        Ok(())
    }

    /// File `file` of a pack is whole and checked: tells the sender, and once every file is,
    /// flushes the pack and keeps each file as its slice of it.
    async fn finish_in_pack(&self, rx: &mut Receiving, file: u32) -> Result<(), TransferError> {
        let job = Rc::clone(&rx.job);
        job.transfer.borrow_mut().complete_file(file)?;
        let _ = job
            .control()
            .send(&TransferMessage::FileVerified { index: file });
        self.publish(&job);
        if !job.transfer.borrow().is_complete() {
            return Ok(());
        }
        let sink = match rx.sinks.remove(&PACK) {
            Some(sink) => sink,
            // Every file was empty.
            None => self.open_sink(&job, &rx.target, PACK).await?,
        };
        let Finished::Download { blob, entry } = sink.finish("").await? else {
            return Ok(());
        };
        let bases = rx.pack.clone().unwrap_or_default();
        let sizes: Vec<u64> = job
            .transfer
            .borrow()
            .files
            .iter()
            .map(|file| file.meta.size)
            .collect();
        for (index, (base, size)) in bases.into_iter().zip(sizes).enumerate() {
            // Slice offsets are doubles; every size a browser handles is exact in one.
            #[allow(clippy::cast_precision_loss)]
            let slice = blob
                .slice_with_f64_and_f64(base as f64, (base + size) as f64)
                .map_err(|error| JsError::new("reading the received folder", &error))?;
            // The pack goes with the first file: the folder's row clears all files at once.
            let entry = if index == 0 { entry.clone() } else { None };
            self.keep(&job, index, Finished::Download { blob: slice, entry });
        }
        self.publish(&job);
        self.deliver_folder(rx).await;
        Ok(())
    }

    async fn open_sink(&self, job: &Job, target: &Target, file: u32) -> Result<Sink, JsError> {
        if file == PACK {
            let opfs = target
                .opfs
                .as_ref()
                .ok_or_else(|| JsError::plain("receiving a folder", "no private storage"))?;
            let id = job.transfer.borrow().id.clone();
            return Sink::private(opfs, &pack_entry(&id)).await;
        }
        let (name, path, size, id) = {
            let transfer = job.transfer.borrow();
            let meta = &transfer.files[file as usize].meta;
            (
                meta.name.clone(),
                meta.path.clone(),
                meta.size,
                transfer.id.clone(),
            )
        };
        match (&target.picked, &target.opfs) {
            (Some(picked), _) => Sink::picked(picked, &path, &name).await,
            (None, Some(opfs)) => Sink::private(opfs, &row_key(&id, file as usize)).await,
            (None, None) => Ok(Sink::memory(size)),
        }
    }
}
