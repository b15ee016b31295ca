//! The sender's pipeline once a transfer runs: read each block the receiver lacks, hash it,
//! announce its digest on the control channel and send its chunks over the emptiest lane,
//! within the flow window; beside it, a reader takes the receiver's acknowledgements, its
//! requests to send a block again, and its verdicts.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, PoisonError};

use ferry_core::blocks::{block_count, block_digest, block_range, file_digest};
use ferry_core::chunking::chunk_ranges;
use ferry_core::flow::{SendWindow, WINDOW};
use ferry_core::resume::Held;
use ferry_core::stripes::pick_lane;
use ferry_core::transfer::{Reaction, Transfer};
use ferry_protocol::{DigestHex, TransferMessage};
use tokio::sync::Notify;

use crate::channel::{Channel, ChannelEvent, Sender};
use crate::report::Progress;
use crate::send::{SendError, ended_by};
use crate::sources::{Source, Sources};

/// What is already known of each file: the blocks the receiver holds (after a resume) and
/// the digests of the file's blocks read so far.
#[derive(Debug)]
pub struct Known {
    /// Per file, what the receiver holds.
    pub held: Vec<Held>,
    /// Per file, each block's digest once read.
    pub digests: Vec<Vec<Option<[u8; 32]>>>,
}

impl Known {
    /// Nothing known: a fresh transfer of `sources`.
    pub fn nothing(sources: &Sources) -> Self {
        let counts = sources
            .files
            .iter()
            .map(|source| block_count(source.meta.size));
        Self {
            held: counts
                .clone()
                .map(|count| Held {
                    complete: false,
                    blocks: vec![false; count as usize],
                    bytes: 0,
                })
                .collect(),
            digests: counts.map(|count| vec![None; count as usize]).collect(),
        }
    }
}

/// The sender's state, shared by the pipeline and the reader of answers.
#[derive(Debug)]
struct State {
    transfer: Transfer,
    window: SendWindow,
    /// Blocks the receiver asked for again.
    again: VecDeque<(u32, u32)>,
    /// Set when the transfer is over, for whatever reason.
    ended: Option<Result<(), SendError>>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends the running `transfer` of `sources` until every file is verified or it ends.
///
/// # Errors
/// When it ends otherwise, as [`SendError`] says.
pub async fn run(
    transfer: Transfer,
    control: Channel,
    lanes: Vec<Sender>,
    sources: &Sources,
    known: Known,
    chunk: usize,
    progress: Progress,
) -> Result<(), SendError> {
    let nick = transfer.peer.clone();
    let state = Arc::new(Mutex::new(State {
        transfer,
        window: SendWindow::new(WINDOW),
        again: VecDeque::new(),
        ended: None,
    }));
    let wake = Arc::new(Notify::new());
    let sender = control.sender.clone();
    let reader = tokio::spawn(read_answers(
        control,
        Arc::clone(&state),
        Arc::clone(&wake),
        nick,
        progress,
    ));
    let pipeline = Pipeline {
        state,
        wake,
        control: sender,
        lanes,
        sources,
        chunk,
    };
    let result = pipeline.run(known).await;
    reader.abort();
    result
}

/// Takes the receiver's answers until the transfer ends.
async fn read_answers(
    mut control: Channel,
    state: Shared,
    wake: Arc<Notify>,
    nick: String,
    mut progress: Progress,
) {
    loop {
        let event = control.next().await;
        let mut state = lock(&state);
        let outcome = match event {
            ChannelEvent::Message(message) => {
                let ended = ended_by(&message, &nick);
                match state.transfer.react(message) {
                    Reaction::Ended => ended.map(Err),
                    Reaction::Refuse(error) => Some(Err(SendError::Failed {
                        peer: nick.clone(),
                        error,
                    })),
                    Reaction::Other(message) => state.answer(message, &nick),
                }
            }
            ChannelEvent::Closed => Some(Err(SendError::Closed(nick.clone()))),
            ChannelEvent::Garbled | ChannelEvent::Chunk { .. } | ChannelEvent::Open => {
                let error = state.transfer.protocol_error();
                Some(Err(SendError::Failed {
                    peer: nick.clone(),
                    error,
                }))
            }
        };
        progress.set(state.transfer.files.iter().map(|file| file.done).sum());
        if let Some(outcome) = outcome {
            if outcome.is_ok() {
                progress.finish();
            }
            state.ended.get_or_insert(outcome);
            wake.notify_one();
            return;
        }
        wake.notify_one();
    }
}

impl State {
    /// Takes an answer that only a receiver sends; `Some` when the transfer ended.
    fn answer(&mut self, message: TransferMessage, nick: &str) -> Option<Result<(), SendError>> {
        let fail = |error| {
            Some(Err(SendError::Failed {
                peer: nick.to_owned(),
                error,
            }))
        };
        match message {
            TransferMessage::Stored { file, block } => {
                if self.window.on_stored(file, block).is_err() {
                    return fail(self.transfer.protocol_error());
                }
                let size = self.transfer.files[file as usize].meta.size;
                let range = block_range(size, block);
                self.transfer.stored(file, range.end - range.start);
                None
            }
            TransferMessage::Resend { file, block } => {
                let known = self
                    .transfer
                    .files
                    .get(file as usize)
                    .is_some_and(|meta| block < block_count(meta.meta.size));
                if !known {
                    return fail(self.transfer.protocol_error());
                }
                self.again.push_back((file, block));
                None
            }
            TransferMessage::FileVerified { index } => {
                if let Err(error) = self.transfer.complete_file(index) {
                    return fail(error);
                }
                self.transfer.is_complete().then_some(Ok(()))
            }
            _ => fail(self.transfer.protocol_error()),
        }
    }
}

/// Reads, hashes and sends the blocks.
struct Pipeline<'a> {
    state: Shared,
    wake: Arc<Notify>,
    /// The control channel: announcements and verdicts.
    control: Sender,
    /// Where chunks go: the control channel first, then the extra lanes' data channels.
    lanes: Vec<Sender>,
    sources: &'a Sources,
    chunk: usize,
}

impl Pipeline<'_> {
    async fn run(&self, known: Known) -> Result<(), SendError> {
        let files = (0..)
            .zip(&self.sources.files)
            .zip(known.held)
            .zip(known.digests);
        for (((index, source), held), mut digests) in files {
            if held.complete {
                continue;
            }
            let file = open(source)?;
            for block in 0..block_count(source.meta.size) {
                self.serve_again().await?;
                if !held.wants(block) {
                    continue;
                }
                let digest = self.send_block(index, source, &file, block).await?;
                digests[block as usize] = Some(digest);
            }
            let all: Option<Vec<[u8; 32]>> = digests.into_iter().collect();
            let digest: DigestHex = file_digest(&all.unwrap_or_default());
            self.control
                .send(&TransferMessage::FileEnd {
                    index,
                    digest: digest.clone(),
                })
                .await
                .map_err(|_| self.closed())?;
            lock(&self.state).transfer.file_sent(index as usize, digest);
        }
        // Every block went once; what is left is to send again what arrived damaged, until
        // every file is verified.
        loop {
            self.serve_again().await?;
            let ended = lock(&self.state).ended.take();
            if let Some(ended) = ended {
                return ended;
            }
            if lock(&self.state).transfer.is_complete() {
                return Ok(());
            }
            self.wake.notified().await;
        }
    }

    /// Sends the blocks asked for again, if any.
    async fn serve_again(&self) -> Result<(), SendError> {
        loop {
            let next = lock(&self.state).again.pop_front();
            let Some((file, block)) = next else {
                return Ok(());
            };
            let source = &self.sources.files[file as usize];
            self.send_block(file, source, &open(source)?, block).await?;
        }
    }

    /// Waits for room in the window, then reads, hashes, announces and sends one block;
    /// returns its digest.
    async fn send_block(
        &self,
        file: u32,
        source: &Source,
        disk: &Arc<File>,
        block: u32,
    ) -> Result<[u8; 32], SendError> {
        let range = block_range(source.meta.size, block);
        let len = range.end - range.start;
        let lane = self.emptiest_lane().await;
        loop {
            {
                let mut state = lock(&self.state);
                if let Some(Err(_)) = &state.ended {
                    let ended = state.ended.take().and_then(Result::err);
                    return Err(ended.unwrap_or(SendError::Cancelled));
                }
                if state.window.may_send(len) {
                    state.window.on_sent(file, block, lane, len);
                    break;
                }
            }
            self.wake.notified().await;
        }
        let (bytes, digest) = read_block(source, disk, range.start, len).await?;
        self.control
            .send(&TransferMessage::Block {
                file,
                index: block,
                digest: DigestHex::from_digest(digest),
            })
            .await
            .map_err(|_| self.closed())?;
        for part in chunk_ranges(len, self.chunk) {
            let slice = &bytes
                [usize::try_from(part.start).unwrap_or(0)..usize::try_from(part.end).unwrap_or(0)];
            self.lanes[lane]
                .send_chunk(file, range.start + part.start, slice)
                .await
                .map_err(|_| self.closed())?;
        }
        Ok(digest)
    }

    /// The lane with the fewest bytes waiting: a block goes whole over one lane.
    async fn emptiest_lane(&self) -> usize {
        let mut waiting = Vec::with_capacity(self.lanes.len());
        for lane in &self.lanes {
            waiting.push(lane.waiting().await);
        }
        pick_lane(&waiting, u64::MAX).unwrap_or(0)
    }

    fn closed(&self) -> SendError {
        SendError::Closed(lock(&self.state).transfer.peer.clone())
    }
}

/// Opens `source` for reading, once for all its blocks.
fn open(source: &Source) -> Result<Arc<File>, SendError> {
    File::open(&source.disk)
        .map(Arc::new)
        .map_err(|error| unreadable(source, error.to_string()))
}

fn unreadable(source: &Source, reason: String) -> SendError {
    SendError::Read {
        path: source.disk.display().to_string(),
        reason,
    }
}

/// Reads `len` bytes of `source` (open as `file`) at `offset` and hashes them, on a thread of
/// their own.
async fn read_block(
    source: &Source,
    file: &Arc<File>,
    offset: u64,
    len: u64,
) -> Result<(Vec<u8>, [u8; 32]), SendError> {
    let file = Arc::clone(file);
    let read = tokio::task::spawn_blocking(move || {
        let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut bytes, offset)?;
        let digest = block_digest(&bytes);
        Ok::<_, std::io::Error>((bytes, digest))
    })
    .await
    .map_err(|error| error.to_string())
    .and_then(|read| read.map_err(|error| error.to_string()));
    read.map_err(|reason| unreadable(source, reason))
}

/// Every block's digest of every unfinished file in `sources`, read from disk: what a resume
/// compares with what the receiver says it holds.
///
/// # Errors
/// When a file cannot be read.
pub async fn digests_of(sources: &Sources) -> Result<Vec<Vec<Option<[u8; 32]>>>, SendError> {
    let mut all = Vec::with_capacity(sources.files.len());
    for source in &sources.files {
        let file = open(source)?;
        let mut digests = Vec::new();
        for block in 0..block_count(source.meta.size) {
            let range = block_range(source.meta.size, block);
            let len = range.end - range.start;
            let (_, digest) = read_block(source, &file, range.start, len).await?;
            digests.push(Some(digest));
        }
        all.push(digests);
    }
    Ok(all)
}
