//! One accepted transfer on the receiving side: chunks from the control channel and from the
//! lanes' data channels gather into blocks; each whole block is hashed against the digest the
//! sender announced, written and acknowledged (or asked for again), and each whole file is
//! moved to its place once its digest matches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_core::blocks::{Next, Verdict, block_digest, block_of, block_range};
use ferry_core::transfer::{Reaction, Transfer, TransferError};
use ferry_protocol::TransferMessage;
use ferry_protocol::chunk::CHUNK_HEADER_BYTES;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, ChannelEvent, FLUSH_LIMIT, Sender};
use crate::disk::{DiskError, Landing};
use crate::report::Progress;

/// How a received transfer ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The transfer failed.
    #[error("the transfer from {peer} failed: {error}")]
    Failed {
        /// Who sent it.
        peer: String,
        /// Why.
        error: TransferError,
    },
    /// They stopped it.
    #[error("{0} cancelled the transfer")]
    CancelledBy(String),
    /// Their side failed.
    #[error("the transfer from {peer} failed on their side: {reason}")]
    FailedThere {
        /// Who sent it.
        peer: String,
        /// What they said.
        reason: String,
    },
    /// The connection broke before the end; what arrived is kept.
    #[error(
        "the connection to {0} broke; what arrived is kept, and the transfer goes on when they \
         send again"
    )]
    Paused(String),
    /// This side stopped it (Ctrl-C); what arrived is kept.
    #[error(
        "paused: what arrived is kept, and the transfer goes on when {0} sends again to a \
         `ferry receive` into the same folder"
    )]
    PausedHere(String),
    /// A file could not be written.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The task receiving it ended without a word (it panicked).
    #[error("the transfer stopped unexpectedly")]
    Stopped,
}

/// What a record made here says kept its files (the browser names its tab there).
const TAB: &str = "ferry";

/// Where a chunk or message came from: the control channel or a lane's data channel.
enum From {
    Control(ChannelEvent),
    Lane(ChannelEvent),
}

/// How often the record of what arrived is written while bytes arrive.
const RECORD_EVERY: Duration = Duration::from_millis(250);

/// Receives `transfer` (accepted or resumed) over `control` and the data channels that come on
/// `lanes`, into `landing`; returns where each file went.
///
/// # Errors
/// When the transfer fails, as [`ReceiveError`] says: then the partial files are gone; when
/// it pauses (the connection broke, or `stop`), they stay with their record.
pub async fn receive(
    control: Channel,
    lanes: mpsc::UnboundedReceiver<Channel>,
    transfer: Transfer,
    landing: Landing,
    progress: Progress,
    stop: CancellationToken,
) -> Result<Vec<PathBuf>, ReceiveError> {
    let sender = control.sender.clone();
    let (events, mut heard) = mpsc::unbounded_channel();
    tokio::spawn(forward(control, events.clone(), From::Control));
    tokio::spawn(attach_lanes(lanes, events));
    let mut receiving = Receiving {
        recorded: Instant::now(),
        sender: sender.clone(),
        landing: Arc::new(landing),
        placed: vec![None; transfer.files.len()],
        transfer,
        pending: HashMap::new(),
        progress,
    };
    let result = loop {
        let heard = tokio::select! {
            heard = heard.recv() => heard,
            () = stop.cancelled() => {
                // The sender sees the channel close and pauses too.
                sender.close().await;
                break Err(ReceiveError::PausedHere(receiving.transfer.peer.clone()));
            }
        };
        let Some(from) = heard else {
            break Err(ReceiveError::Paused(receiving.transfer.peer.clone()));
        };
        match receiving.take(from).await {
            Ok(true) => break Ok(receiving.placed.iter().flatten().cloned().collect()),
            Ok(false) => {}
            Err(error) => break Err(error),
        }
    };
    match &result {
        Ok(_) => {
            sender.flushed(FLUSH_LIMIT).await;
            receiving.progress.finish();
            receiving.landing.done();
        }
        Err(ReceiveError::Paused(_) | ReceiveError::PausedHere(_)) => {
            receiving.transfer.pause();
            receiving.keep_record()?;
            receiving.progress.finish();
        }
        Err(error) => {
            receiving.landing.done();
            if let ReceiveError::Disk(_) | ReceiveError::Failed { .. } = error {
                let reason = error.to_string();
                let _ = sender.send(&TransferMessage::Failed { reason }).await;
            }
            sender.flushed(FLUSH_LIMIT).await;
        }
    }
    result
}

async fn forward(
    mut channel: Channel,
    events: mpsc::UnboundedSender<From>,
    wrap: fn(ChannelEvent) -> From,
) {
    loop {
        let event = channel.next().await;
        let closed = matches!(event, ChannelEvent::Closed);
        if events.send(wrap(event)).is_err() || closed {
            return;
        }
    }
}

async fn attach_lanes(
    mut lanes: mpsc::UnboundedReceiver<Channel>,
    events: mpsc::UnboundedSender<From>,
) {
    while let Some(lane) = lanes.recv().await {
        if events.is_closed() {
            return;
        }
        tokio::spawn(forward(lane, events.clone(), From::Lane));
    }
}

struct Receiving {
    /// When the record of what arrived was last written.
    recorded: Instant,
    sender: Sender,
    landing: Arc<Landing>,
    transfer: Transfer,
    /// The chunks of blocks not checked yet, by file and block.
    pending: HashMap<(u32, u32), Vec<(u64, Bytes)>>,
    /// Where each file went, once it did.
    placed: Vec<Option<PathBuf>>,
    progress: Progress,
}

impl Receiving {
    /// Takes one event; true when every file arrived.
    async fn take(&mut self, from: From) -> Result<bool, ReceiveError> {
        match from {
            From::Control(ChannelEvent::Message(message)) => self.message(message).await,
            From::Control(ChannelEvent::Closed) => {
                Err(ReceiveError::Paused(self.transfer.peer.clone()))
            }
            From::Control(ChannelEvent::Chunk { header, message })
            | From::Lane(ChannelEvent::Chunk { header, message }) => {
                let len = (message.len() - CHUNK_HEADER_BYTES) as u64;
                let next = self
                    .transfer
                    .chunk(header.file, header.offset, len)
                    .map_err(|error| self.failed(error))?;
                if next == Next::Duplicate {
                    return Ok(false);
                }
                let block = block_of(header.offset);
                self.pending
                    .entry((header.file, block))
                    .or_default()
                    .push((header.offset, message.slice(CHUNK_HEADER_BYTES..)));
                self.then(header.file, next).await
            }
            From::Control(ChannelEvent::Garbled) | From::Lane(ChannelEvent::Garbled) => {
                Err(self.failed(self.transfer.protocol_error()))
            }
            From::Control(ChannelEvent::Open) | From::Lane(_) => Ok(false),
        }
    }

    async fn message(&mut self, message: TransferMessage) -> Result<bool, ReceiveError> {
        let peer = self.transfer.peer.clone();
        let cancelled = matches!(message, TransferMessage::Cancel);
        let reason = match &message {
            TransferMessage::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        match self.transfer.react(message) {
            Reaction::Ended if cancelled => Err(ReceiveError::CancelledBy(peer)),
            Reaction::Ended => Err(ReceiveError::FailedThere {
                peer,
                reason: reason.unwrap_or_default(),
            }),
            Reaction::Refuse(error) => Err(self.failed(error)),
            Reaction::Other(TransferMessage::Block {
                file,
                index,
                digest,
            }) => {
                let next = self
                    .transfer
                    .block_digest(file, index, &digest)
                    .map_err(|error| self.failed(error))?;
                self.then(file, next).await
            }
            Reaction::Other(TransferMessage::FileEnd { index, digest }) => {
                let whole = self
                    .transfer
                    .file_end(index, digest)
                    .map_err(|error| self.failed(error))?;
                self.finish(whole).await
            }
            Reaction::Other(_) => Err(self.failed(self.transfer.protocol_error())),
        }
    }

    /// Goes on after a chunk or a digest: checks the block when it is whole.
    async fn then(&mut self, file: u32, next: Next) -> Result<bool, ReceiveError> {
        let Next::Check(block) = next else {
            return Ok(false);
        };
        let mut chunks = self.pending.remove(&(file, block)).unwrap_or_default();
        chunks.sort_unstable_by_key(|(offset, _)| *offset);
        let size = self.transfer.files[file as usize].meta.size;
        let range = block_range(size, block);
        let landing = Arc::clone(&self.landing);
        // Hashing and writing a block take a thread, not the connection's.
        let hashed = tokio::task::spawn_blocking(move || {
            let mut bytes =
                Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
            for (_, chunk) in &chunks {
                bytes.extend_from_slice(chunk);
            }
            (block_digest(&bytes), bytes)
        })
        .await;
        let Ok((digest, bytes)) = hashed else {
            return Err(self.failed(self.transfer.protocol_error()));
        };
        match self
            .transfer
            .check_block(file, block, digest)
            .map_err(|error| self.failed(error))?
        {
            Verdict::Resend => {
                self.send(&TransferMessage::Resend { file, block }).await?;
                Ok(false)
            }
            Verdict::Good { .. } => {
                let written = tokio::task::spawn_blocking(move || {
                    landing.write(file as usize, range.start, &bytes)
                })
                .await;
                match written {
                    Ok(written) => written?,
                    Err(_) => return Err(self.failed(self.transfer.protocol_error())),
                }
                self.transfer.block_stored(file, block);
                self.send(&TransferMessage::Stored { file, block }).await?;
                if self.recorded.elapsed() >= RECORD_EVERY {
                    self.keep_record()?;
                }
                self.progress
                    .set(self.transfer.files.iter().map(|file| file.done).sum());
                let whole = self
                    .transfer
                    .whole(file as usize)
                    .map_err(|error| self.failed(error))?;
                self.finish(whole).await
            }
        }
    }

    /// Moves a whole, checked file to its place and says so; true when it was the last.
    async fn finish(&mut self, whole: Option<usize>) -> Result<bool, ReceiveError> {
        let Some(index) = whole else {
            return Ok(false);
        };
        let landing = Arc::clone(&self.landing);
        let placed = tokio::task::spawn_blocking(move || landing.finish(index))
            .await
            .map_err(|_| self.failed(self.transfer.protocol_error()))??;
        self.placed[index] = Some(placed);
        let verified = u32::try_from(index).unwrap_or(u32::MAX);
        self.transfer
            .complete_file(verified)
            .map_err(|error| self.failed(error))?;
        self.send(&TransferMessage::FileVerified { index: verified })
            .await?;
        Ok(self.transfer.is_complete())
    }

    async fn send(&self, message: &TransferMessage) -> Result<(), ReceiveError> {
        self.sender
            .send(message)
            .await
            .map_err(|_| ReceiveError::Paused(self.transfer.peer.clone()))
    }

    /// Writes down what arrived, so a restart of `ferry receive` can go on from there.
    fn keep_record(&mut self) -> Result<(), ReceiveError> {
        self.recorded = Instant::now();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Ok(self.landing.keep(self.transfer.record(TAB, now))?)
    }

    fn failed(&self, error: TransferError) -> ReceiveError {
        ReceiveError::Failed {
            peer: self.transfer.peer.clone(),
            error,
        }
    }
}
