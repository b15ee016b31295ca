//! The receiver's checks and writes: a block that has all its bytes and its digest is hashed,
//! and written at its place and acknowledged, or asked for again; a file whose blocks are all
//! checked and whose digest matches is flushed and handed over.

use std::collections::hash_map::Entry;

use ferry_protocol::TransferMessage;

use super::receive::{Holding, Target};
use super::{Engine, Job};
use crate::core::blocks::{Verdict, block_digest, block_range};
use crate::core::rows::row_key;
use crate::core::transfer::TransferError;
use crate::web::JsError;
use crate::web::sink::{Finished, Sink};

impl Engine {
    /// Block `block` of file `file` has all its bytes and its digest: hashes it, and writes
    /// and acknowledges it, or asks for it again.
    pub(super) async fn check(
        &self,
        job: &Job,
        holding: &mut Holding,
        target: &Target<'_>,
        file: u32,
        block: u32,
    ) -> Result<(), TransferError> {
        let local = |error: JsError| TransferError::Local(error.to_string());
        let chunks = holding.chunks.remove(&(file, block)).unwrap_or_default();
        let size = job.transfer.borrow().files[file as usize].meta.size;
        let range = block_range(size, block);
        // The assembly let through only chunks that tile the block exactly.
        let buffer = &mut holding.block;
        buffer.resize(usize::try_from(range.end - range.start).unwrap_or(0), 0);
        for (offset, bytes) in &chunks {
            let start = usize::try_from(offset - range.start).unwrap_or(0);
            bytes.copy_to(&mut buffer[start..start + bytes.length() as usize]);
        }
        let digest = block_digest(buffer);
        let verdict = job.transfer.borrow_mut().check_block(file, block, digest)?;
        match verdict {
            Verdict::Resend => {
                let _ = job.control().send(&TransferMessage::Resend { file, block });
                Ok(())
            }
            Verdict::Good { .. } => {
                let sink = match holding.sinks.entry(file) {
                    Entry::Occupied(open) => open.into_mut(),
                    Entry::Vacant(closed) => {
                        closed.insert(self.open_sink(job, file, target).await.map_err(local)?)
                    }
                };
                sink.write(&chunks).await.map_err(local)?;
                let _ = job.control().send(&TransferMessage::Stored { file, block });
                self.save_record(job, false);
                self.progress(job, file as usize);
                let whole = job.transfer.borrow_mut().whole(file as usize)?;
                if let Some(file) = whole {
                    self.finish(job, holding, target, file).await?;
                }
                Ok(())
            }
        }
    }

    /// File `index` is whole and checked: flushes it, keeps it and tells the sender.
    pub(super) async fn finish(
        &self,
        job: &Job,
        holding: &mut Holding,
        target: &Target<'_>,
        index: usize,
    ) -> Result<(), TransferError> {
        let local = |error: JsError| TransferError::Local(error.to_string());
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        let sink = match holding.sinks.remove(&file) {
            Some(sink) => sink,
            // An empty file had no block to open its sink.
            None => self.open_sink(job, file, target).await.map_err(local)?,
        };
        self.publish(job);
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
        self.keep(job, index, finished.map_err(local)?);
        job.transfer.borrow_mut().complete_file(file)?;
        let _ = job
            .control()
            .send(&TransferMessage::FileVerified { index: file });
        self.publish(job);
        self.deliver_folder(job, target).await;
        Ok(())
    }

    async fn open_sink(&self, job: &Job, file: u32, target: &Target<'_>) -> Result<Sink, JsError> {
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
        match (target.picked, target.opfs) {
            (Some(picked), _) => Sink::picked(picked, &path, &name).await,
            (None, Some(opfs)) => Sink::private(opfs, &row_key(&id, file as usize)).await,
            (None, None) => Ok(Sink::memory(size)),
        }
    }
}
