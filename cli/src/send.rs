//! `ferry send`: offer the files, and once accepted read each a block at a time, hash it,
//! announce its digest and send its chunks within the flow window; beside it, a reader takes
//! the receiver's acknowledgements, its requests to send a block again, and its verdicts.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_core::blocks::{block_count, block_digest, block_range, file_digest};
use ferry_core::chunking::{chunk_ranges, chunk_size};
use ferry_core::flow::{SendWindow, WINDOW};
use ferry_core::format::human_size;
use ferry_core::stripes::{Lanes, Striping, pick_lane};
use ferry_core::transfer::{Reaction, Transfer, TransferError, check_version};
use ferry_protocol::chunk::CHUNK_HEADER_BYTES;
use ferry_protocol::{
    DATA_CHANNEL_PREFIX, DigestHex, TRANSFER_CHANNEL_LABEL, TRANSFER_VERSION, TransferId,
    TransferMessage, UserInfo,
};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, ChannelEvent, FLUSH_LIMIT, Sender};
use crate::report::{Progress, Report};
use crate::session::Session;
use crate::sources::{Source, Sources};

/// How long the sender waits for a connection before it says there is no path.
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

/// How a send ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nobody by that nick is here.
    #[error("nobody called {0} is online here: `ferry who` lists who is")]
    Unknown(String),
    /// No connection could be made.
    #[error("no network path to {0}: the connection did not come up within 20 s")]
    NoPath(String),
    /// They said no.
    #[error("{0} declined")]
    Declined(String),
    /// They stopped it.
    #[error("{0} cancelled the transfer")]
    CancelledBy(String),
    /// The transfer failed.
    #[error("the transfer to {peer} failed: {error}")]
    Failed {
        /// Who.
        peer: String,
        /// Why.
        error: TransferError,
    },
    /// The connection closed before the end.
    #[error("the connection to {0} closed before everything arrived")]
    Closed(String),
    /// This side stopped it.
    #[error("cancelled")]
    Cancelled,
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The WebRTC stack failed.
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
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

/// Offers `sources` to `to` and sends them; returns once every file is verified.
///
/// # Errors
/// When the transfer cannot be done, as [`SendError`] says.
pub async fn send(
    session: &Session,
    report: &Report,
    to: &UserInfo,
    sources: &Sources,
    stop: CancellationToken,
) -> Result<(), SendError> {
    let nick = to.nick.as_str().to_owned();
    let link = session.peers.link(&to.id, 0).await?;
    let mut control = link.open(TRANSFER_CHANNEL_LABEL).await?;
    let opened = tokio::select! {
        () = stop.cancelled() => return Err(SendError::Cancelled),
        opened = tokio::time::timeout(CONNECT_DEADLINE, control.opened()) => opened,
    };
    match opened {
        Ok(true) => {}
        Ok(false) => return Err(SendError::Closed(nick)),
        Err(_) => return Err(SendError::NoPath(nick)),
    }
    let mut random = [0; 16];
    getrandom::fill(&mut random).map_err(|error| SendError::Read {
        path: "the system's randomness".into(),
        reason: error.to_string(),
    })?;
    let id = TransferId::from_random_bytes(random);
    let mut transfer = Transfer::outgoing(id.clone(), &nick, sources.metas())
        .with_empty_folders(sources.empty_folders.clone());
    let total: u64 = sources.files.iter().map(|source| source.meta.size).sum();
    let offer = TransferMessage::Offer {
        id: id.clone(),
        files: sources.metas(),
        version: TRANSFER_VERSION,
        empty_folders: sources.empty_folders.clone(),
    };
    let sender = control.sender.clone();
    sender
        .send(&offer)
        .await
        .map_err(|_| SendError::Closed(nick.clone()))?;
    let what = match sources.files.as_slice() {
        [one] => format!("{} ({})", one.meta.name, human_size(total)),
        many => format!("{} files ({})", many.len(), human_size(total)),
    };
    report.say(
        "offered",
        json!({ "id": id.as_str(), "to": nick, "files": sources.files.len(), "bytes": total }),
        &format!("Offered {what} to {nick}; waiting for them to accept…"),
    );
    let answer = tokio::select! {
        () = stop.cancelled() => {
            let _ = sender.send(&TransferMessage::Cancel).await;
            sender.flushed(FLUSH_LIMIT).await;
            return Err(SendError::Cancelled);
        }
        answer = control.next() => answer,
    };
    let ChannelEvent::Message(message) = answer else {
        return Err(SendError::Closed(nick));
    };
    let ended = ended_by(&message, &nick);
    match transfer.react(message) {
        Reaction::Other(TransferMessage::Accept { version }) => {
            if let Err(error) = check_version(&nick, version) {
                let reason = error.for_peer(&session.welcome.nick).to_string();
                let _ = sender.send(&TransferMessage::Failed { reason }).await;
                return Err(SendError::Failed { peer: nick, error });
            }
            transfer.accept();
        }
        Reaction::Other(TransferMessage::Decline) => return Err(SendError::Declined(nick)),
        Reaction::Ended => return Err(ended.unwrap_or(SendError::Closed(nick))),
        Reaction::Refuse(error) => return Err(SendError::Failed { peer: nick, error }),
        Reaction::Other(_) => {
            let error = transfer.protocol_error();
            return Err(SendError::Failed { peer: nick, error });
        }
    }
    report.say(
        "accepted",
        json!({ "id": id.as_str(), "to": nick }),
        &format!("{nick} accepted."),
    );
    let limit = link.max_message_size().await.map(f64::from);
    let lanes = open_lanes(session, to, &id, total, sender.clone()).await;
    let state = Arc::new(Mutex::new(State {
        transfer,
        window: SendWindow::new(WINDOW),
        again: VecDeque::new(),
        ended: None,
    }));
    let wake = Arc::new(Notify::new());
    let progress = report.progress(id.as_str(), total, &format!("to {nick}"));
    let reader = tokio::spawn(read_answers(
        control,
        Arc::clone(&state),
        Arc::clone(&wake),
        nick.clone(),
        progress,
    ));
    let pipeline = Pipeline {
        state: Arc::clone(&state),
        wake,
        control: sender.clone(),
        lanes,
        sources,
        chunk: chunk_size(limit) - CHUNK_HEADER_BYTES,
    };
    let result = tokio::select! {
        result = pipeline.run() => result,
        () = stop.cancelled() => {
            let _ = sender.send(&TransferMessage::Cancel).await;
            Err(SendError::Cancelled)
        }
    };
    reader.abort();
    if let Err(SendError::Read { reason, .. }) = &result {
        let reason = format!("{} could not read a file: {reason}", session.welcome.nick);
        let _ = sender.send(&TransferMessage::Failed { reason }).await;
    }
    // The last words (a cancel, a failure) reach the peer before the connection closes.
    sender.flushed(FLUSH_LIMIT).await;
    result
}

/// The channels a transfer's chunks go over: the control channel, and for a large transfer a
/// data channel on each extra connection (lane) that opened in time; a lane that does not
/// open is left out.
async fn open_lanes(
    session: &Session,
    to: &UserInfo,
    id: &TransferId,
    total: u64,
    control: Sender,
) -> Vec<Sender> {
    let count = Striping::new(Lanes::default(), total, None).lanes();
    let label = format!("{DATA_CHANNEL_PREFIX}{id}");
    let extra = (1..count).map(|lane| {
        let label = label.clone();
        async move {
            let link = session
                .peers
                .link(&to.id, u32::try_from(lane).unwrap_or(u32::MAX))
                .await
                .ok()?;
            let mut channel = link.open(&label).await.ok()?;
            let opened = tokio::time::timeout(CONNECT_DEADLINE, channel.opened()).await;
            matches!(opened, Ok(true)).then(|| channel.sender.clone())
        }
    });
    let mut lanes = vec![control];
    lanes.extend(futures::future::join_all(extra).await.into_iter().flatten());
    lanes
}

/// The error a cancel or failure from the peer means.
fn ended_by(message: &TransferMessage, nick: &str) -> Option<SendError> {
    match message {
        TransferMessage::Cancel => Some(SendError::CancelledBy(nick.to_owned())),
        TransferMessage::Failed { reason } => Some(SendError::Failed {
            peer: nick.to_owned(),
            error: TransferError::Remote(reason.clone()),
        }),
        _ => None,
    }
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
    async fn run(&self) -> Result<(), SendError> {
        for (index, source) in (0..).zip(&self.sources.files) {
            let mut digests = Vec::new();
            for block in 0..block_count(source.meta.size) {
                self.serve_again().await?;
                digests.push(self.send_block(index, source, block).await?);
            }
            let digest: DigestHex = file_digest(&digests);
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
            self.send_block(file, &self.sources.files[file as usize], block)
                .await?;
        }
    }

    /// Waits for room in the window, then reads, hashes, announces and sends one block;
    /// returns its digest.
    async fn send_block(
        &self,
        file: u32,
        source: &Source,
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
        let disk = source.disk.clone();
        let read = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&disk)?;
            let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
            file.read_exact_at(&mut bytes, range.start)?;
            let digest = block_digest(&bytes);
            Ok::<_, std::io::Error>((bytes, digest))
        })
        .await
        .map_err(|error| error.to_string())
        .and_then(|read| read.map_err(|error| error.to_string()));
        let (bytes, digest) = read.map_err(|reason| SendError::Read {
            path: source.disk.display().to_string(),
            reason,
        })?;
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
