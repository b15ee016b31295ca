//! `ferry send`: offer the files (or resume the same send stopped earlier), then hand the
//! running transfer to [`crate::sending`].

use std::time::Duration;

use ferry_core::chunking::chunk_size;
use ferry_core::format::human_size;
use ferry_core::resume::read_held;
use ferry_core::stripes::{Lanes, Striping};
use ferry_core::transfer::{Reaction, Transfer, TransferError, check_version};
use ferry_protocol::chunk::CHUNK_HEADER_BYTES;
use ferry_protocol::{
    DATA_CHANNEL_PREFIX, TRANSFER_CHANNEL_LABEL, TRANSFER_VERSION, TransferId, TransferMessage,
    UserInfo,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, ChannelEvent, FLUSH_LIMIT, Sender};
use crate::link::Link;
use crate::report::Report;
use crate::sending::{self, Known};
use crate::sent::{SentRecord, SentRecords};
use crate::session::Session;
use crate::sources::Sources;

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
    /// This side stopped it before it began.
    #[error("cancelled")]
    Cancelled,
    /// This side stopped it midway; the receiver keeps what arrived.
    #[error("{0} keeps what arrived, and the same command run again goes on from there")]
    Paused(String),
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

/// How a send was started: which transfer, and what the receiver already holds.
struct Started {
    transfer: Transfer,
    control: Channel,
    known: Known,
}

/// Offers `sources` to `to` (or, when an earlier run of the same send was stopped, resumes
/// it) and sends them; returns once every file is verified.
///
/// # Errors
/// When the transfer cannot be done, as [`SendError`] says. Stopped with `stop`, a running
/// transfer pauses ([`SendError::Paused`]): the receiver keeps what arrived, and the same
/// send run again goes on from there.
pub async fn send(
    session: &Session,
    report: &Report,
    records: &SentRecords,
    to: &UserInfo,
    sources: &Sources,
    stop: CancellationToken,
) -> Result<(), SendError> {
    let nick = to.nick.as_str().to_owned();
    let link = session.peers.link(&to.id, 0).await?;
    let earlier = records.find(&nick, sources);
    let started = match earlier {
        Some(record) => match resume(&link, report, &nick, sources, &record, &stop).await? {
            Some(started) => started,
            None => {
                records.forget(&record.id);
                offer(session, &link, report, &nick, sources, &stop).await?
            }
        },
        None => offer(session, &link, report, &nick, sources, &stop).await?,
    };
    let Started {
        transfer,
        control,
        known,
    } = started;
    let id = transfer.id.clone();
    let record = SentRecord::new(id.clone(), &nick, sources);
    records.keep(&record).map_err(|error| SendError::Read {
        path: "the record of this transfer".into(),
        reason: error.to_string(),
    })?;
    let total: u64 = sources.files.iter().map(|source| source.meta.size).sum();
    let limit = link.max_message_size().await.map(f64::from);
    let sender = control.sender.clone();
    let lanes = open_lanes(session, to, &id, total, sender.clone()).await;
    let mut progress = report.progress(id.as_str(), total, &format!("to {nick}"));
    progress.set(transfer.files.iter().map(|file| file.done).sum());
    let chunk = chunk_size(limit) - CHUNK_HEADER_BYTES;
    let running = sending::run(
        transfer,
        control,
        lanes.clone(),
        sources,
        known,
        chunk,
        progress,
    );
    let result = tokio::select! {
        result = running => result,
        () = stop.cancelled() => {
            // The receiver sees its channels close and keeps what arrived, paused.
            for lane in &lanes {
                lane.close().await;
            }
            return Err(SendError::Paused(nick));
        }
    };
    match &result {
        Err(SendError::Read { reason, .. }) => {
            let reason = format!("{} could not read a file: {reason}", session.welcome.nick);
            let _ = sender.send(&TransferMessage::Failed { reason }).await;
            records.forget(&id);
        }
        // A broken connection leaves the record, so the same send run again resumes.
        Err(SendError::Closed(_)) => {}
        _ => records.forget(&id),
    }
    // The last words (a failure) reach the peer before the connection closes.
    sender.flushed(FLUSH_LIMIT).await;
    result
}

/// Opens a new control channel with `nick` and waits for it to open.
async fn control_channel(
    link: &Link,
    nick: &str,
    stop: &CancellationToken,
) -> Result<Channel, SendError> {
    let mut control = link.open(TRANSFER_CHANNEL_LABEL).await?;
    let opened = tokio::select! {
        () = stop.cancelled() => return Err(SendError::Cancelled),
        opened = tokio::time::timeout(CONNECT_DEADLINE, control.opened()) => opened,
    };
    match opened {
        Ok(true) => Ok(control),
        Ok(false) => Err(SendError::Closed(nick.to_owned())),
        Err(_) => Err(SendError::NoPath(nick.to_owned())),
    }
}

/// Offers `sources` to `nick` and waits for the answer.
async fn offer(
    session: &Session,
    link: &Link,
    report: &Report,
    nick: &str,
    sources: &Sources,
    stop: &CancellationToken,
) -> Result<Started, SendError> {
    let mut control = control_channel(link, nick, stop).await?;
    let mut random = [0; 16];
    getrandom::fill(&mut random).map_err(|error| SendError::Read {
        path: "the system's randomness".into(),
        reason: error.to_string(),
    })?;
    let id = TransferId::from_random_bytes(random);
    let mut transfer = Transfer::outgoing(id.clone(), nick, sources.metas())
        .with_empty_folders(sources.empty_folders.clone());
    let total: u64 = sources.files.iter().map(|source| source.meta.size).sum();
    let offer = TransferMessage::Offer {
        id: id.clone(),
        files: sources.metas(),
        version: TRANSFER_VERSION,
        empty_folders: sources.empty_folders.clone(),
    };
    let sender = control.sender.clone();
    let closed = || SendError::Closed(nick.to_owned());
    sender.send(&offer).await.map_err(|_| closed())?;
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
            // Nothing moved yet: the offer is withdrawn.
            let _ = sender.send(&TransferMessage::Cancel).await;
            sender.flushed(FLUSH_LIMIT).await;
            return Err(SendError::Cancelled);
        }
        answer = control.next() => answer,
    };
    let ChannelEvent::Message(message) = answer else {
        return Err(closed());
    };
    let ended = ended_by(&message, nick);
    match transfer.react(message) {
        Reaction::Other(TransferMessage::Accept { version }) => {
            if let Err(error) = check_version(nick, version) {
                let reason = error.for_peer(&session.welcome.nick).to_string();
                let _ = sender.send(&TransferMessage::Failed { reason }).await;
                sender.flushed(FLUSH_LIMIT).await;
                return Err(SendError::Failed {
                    peer: nick.to_owned(),
                    error,
                });
            }
            transfer.accept();
        }
        Reaction::Other(TransferMessage::Decline) => {
            return Err(SendError::Declined(nick.to_owned()));
        }
        Reaction::Ended => return Err(ended.unwrap_or_else(closed)),
        Reaction::Refuse(error) => {
            return Err(SendError::Failed {
                peer: nick.to_owned(),
                error,
            });
        }
        Reaction::Other(_) => {
            let error = transfer.protocol_error();
            return Err(SendError::Failed {
                peer: nick.to_owned(),
                error,
            });
        }
    }
    report.say(
        "accepted",
        json!({ "id": id.as_str(), "to": nick }),
        &format!("{nick} accepted."),
    );
    Ok(Started {
        transfer,
        control,
        known: Known::nothing(sources),
    })
}

/// Asks `nick` to go on with the transfer `record` names; `None` when they no longer hold it
/// (then it is offered afresh).
async fn resume(
    link: &Link,
    report: &Report,
    nick: &str,
    sources: &Sources,
    record: &SentRecord,
    stop: &CancellationToken,
) -> Result<Option<Started>, SendError> {
    let mut control = control_channel(link, nick, stop).await?;
    let sender = control.sender.clone();
    let closed = || SendError::Closed(nick.to_owned());
    let ask = TransferMessage::Resume {
        id: record.id.clone(),
        version: TRANSFER_VERSION,
    };
    sender.send(&ask).await.map_err(|_| closed())?;
    let answer = tokio::select! {
        () = stop.cancelled() => return Err(SendError::Cancelled),
        answer = control.next() => answer,
    };
    let files = match answer {
        ChannelEvent::Message(TransferMessage::Resumed { files }) => files,
        ChannelEvent::Message(TransferMessage::Failed { .. } | TransferMessage::Cancel) => {
            sender.close().await;
            return Ok(None);
        }
        _ => return Err(closed()),
    };
    // What they hold is checked against the files as they are now, block by block.
    let digests = sending::digests_of(sources).await?;
    let sizes: Vec<(&str, u64)> = sources
        .files
        .iter()
        .map(|source| (source.meta.name.as_str(), source.meta.size))
        .collect();
    let held = match read_held(&files, &sizes, &digests) {
        Ok(held) => held,
        Err(error) => {
            let error = TransferError::Resume(error);
            let reason = error.to_string();
            let _ = sender.send(&TransferMessage::Failed { reason }).await;
            sender.flushed(FLUSH_LIMIT).await;
            return Err(SendError::Failed {
                peer: nick.to_owned(),
                error,
            });
        }
    };
    let mut transfer = Transfer::outgoing(record.id.clone(), nick, sources.metas())
        .with_empty_folders(sources.empty_folders.clone());
    transfer.accept();
    transfer.pause();
    transfer.resume_sending(&held);
    let holds: u64 = held.iter().map(|held| held.bytes).sum();
    report.say(
        "resumed",
        json!({ "id": record.id.as_str(), "to": nick, "held": holds }),
        &format!("{nick} still has {}; sending the rest.", human_size(holds)),
    );
    Ok(Some(Started {
        transfer,
        control,
        known: Known { held, digests },
    }))
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
pub(crate) fn ended_by(message: &TransferMessage, nick: &str) -> Option<SendError> {
    match message {
        TransferMessage::Cancel => Some(SendError::CancelledBy(nick.to_owned())),
        TransferMessage::Failed { reason } => Some(SendError::Failed {
            peer: nick.to_owned(),
            error: TransferError::Remote(reason.clone()),
        }),
        _ => None,
    }
}
