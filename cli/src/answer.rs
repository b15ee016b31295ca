//! Answering what a peer opened a control channel for: an offer (asked, or taken with
//! `--yes`) or a resume of a transfer this folder keeps; either starts a task that receives.

use ferry_core::offer::IncomingOffer;
use ferry_core::paths::arrange;
use ferry_core::transfer::{Transfer, TransferError, check_version, no_longer_held};
use ferry_protocol::{FileMeta, PeerId, TRANSFER_VERSION, TransferId, TransferMessage};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, FLUSH_LIMIT};
use crate::disk::Landing;
use crate::receive::Options;
use crate::receiving::{self, ReceiveError};
use crate::report::Report;

/// What a peer opened a control channel for, when it needs more than a word back.
pub enum Asked {
    /// Files on offer.
    Offer {
        /// The files.
        files: Vec<FileMeta>,
        /// The offer's empty folders.
        empty_folders: Vec<String>,
    },
    /// To go on with a transfer that paused.
    Resume,
    /// What this side holds of a transfer, without going on.
    Probe,
}

/// A control channel and what it was opened for.
pub struct Opened {
    /// Who opened it.
    pub peer: PeerId,
    /// Their nick.
    pub nick: String,
    /// The transfer it is about.
    pub id: TransferId,
    /// Their protocol version.
    pub version: u32,
    /// What for.
    pub asked: Asked,
    /// The channel.
    pub control: Channel,
}

/// How an answer went.
pub enum Answer {
    /// A transfer is being received.
    Receiving {
        /// Which.
        id: TransferId,
        /// From whom.
        peer: PeerId,
        /// Where its lanes' channels go.
        lanes: mpsc::UnboundedSender<Channel>,
        /// The task receiving it.
        task: tokio::task::JoinHandle<Result<(), ReceiveError>>,
    },
    /// The offer was declined.
    Declined,
    /// It was refused, for this reason.
    Refused(String),
    /// Nothing to do (a probe answered, a resume of something not kept here).
    Said,
}

/// Answers what `opened` asks.
pub async fn answer(
    opened: Opened,
    options: &Options,
    report: &Report,
    me: &str,
    stop: &CancellationToken,
) -> Answer {
    if let Err(error) = check_version(&opened.nick, opened.version) {
        return refuse(&opened, &error, report, me).await;
    }
    match opened.asked {
        Asked::Offer {
            ref files,
            ref empty_folders,
        } => {
            let (files, empty_folders) = (files.clone(), empty_folders.clone());
            offer(opened, &files, &empty_folders, options, report, me, stop).await
        }
        Asked::Resume | Asked::Probe => kept(opened, options, report, me, stop).await,
    }
}

/// Answers a resume or a probe from what the target folder keeps of the transfer.
async fn kept(
    opened: Opened,
    options: &Options,
    report: &Report,
    me: &str,
    stop: &CancellationToken,
) -> Answer {
    let sender = opened.control.sender.clone();
    let restored = Landing::reopen(&options.dir, &opened.id)
        .ok()
        .filter(|(_, record)| record.from.to_lowercase() == opened.nick.to_lowercase())
        .and_then(|(landing, record)| Some((landing, Transfer::restored(&record)?)));
    let Some((landing, mut transfer)) = restored else {
        let _ = sender.send(&no_longer_held(me)).await;
        sender.flushed(FLUSH_LIMIT).await;
        return Answer::Said;
    };
    if matches!(opened.asked, Asked::Probe) {
        let files = transfer.held();
        let _ = sender.send(&TransferMessage::Holds { files }).await;
        return Answer::Said;
    }
    let files = transfer.resume_receiving();
    if sender
        .send(&TransferMessage::Resumed { files })
        .await
        .is_err()
    {
        return Answer::Refused(format!("{} went away before the answer", opened.nick));
    }
    let held: u64 = transfer.files.iter().map(|file| file.done).sum();
    let total: u64 = transfer.files.iter().map(|file| file.meta.size).sum();
    let summary = IncomingOffer {
        id: opened.id.clone(),
        from: opened.nick.clone(),
        files: transfer
            .files
            .iter()
            .map(|file| file.meta.clone())
            .collect(),
        empty_folders: transfer.empty_folders().to_vec(),
        memory_only: false,
        memory_limit: u64::MAX,
        room: None,
    }
    .summary();
    report.say(
        "resumed",
        json!({ "id": opened.id.as_str(), "from": opened.nick, "held": held, "bytes": total }),
        &format!("Going on with {summary} from {}.", opened.nick),
    );
    start(opened, transfer, landing, summary, total, report, stop)
}

/// Asks about an offer (or takes it, with `--yes`) and starts receiving it.
async fn offer(
    opened: Opened,
    files: &[FileMeta],
    empty_folders: &[String],
    options: &Options,
    report: &Report,
    me: &str,
    stop: &CancellationToken,
) -> Answer {
    let (id, nick) = (opened.id.clone(), opened.nick.clone());
    let sender = opened.control.sender.clone();
    let arranged = match arrange(files, empty_folders) {
        Ok(arranged) => arranged,
        Err(error) => return refuse(&opened, &TransferError::UnsafePath(error), report, me).await,
    };
    let offer = IncomingOffer {
        id: id.clone(),
        from: nick.clone(),
        files: arranged.files.clone(),
        empty_folders: arranged.empty_folders.clone(),
        memory_only: false,
        memory_limit: u64::MAX,
        room: None,
    };
    let summary = offer.summary();
    let total = offer.total_size();
    report.say(
        "offer",
        json!({ "id": id.as_str(), "from": nick, "files": files.len(), "bytes": total }),
        &format!("{nick} offers {summary}."),
    );
    let from_other = options
        .from
        .as_ref()
        .is_some_and(|from| from.to_lowercase() != nick.to_lowercase());
    let accepted = !from_other
        && (options.yes || ask(&format!("Accept {summary} from {nick}? [y/N] "), stop).await);
    if !accepted {
        let _ = sender.send(&TransferMessage::Decline).await;
        sender.flushed(FLUSH_LIMIT).await;
        report.say(
            "declined",
            json!({ "id": id.as_str(), "from": nick }),
            &format!("Declined {summary} from {nick}."),
        );
        return Answer::Declined;
    }
    let landing = match Landing::prepare(&options.dir, &id, &arranged) {
        Ok(landing) => landing,
        Err(error) => {
            let error = TransferError::Local(ferry_core::transfer::LocalError {
                doing: "preparing the target folder",
                what: error.to_string(),
            });
            return refuse(&opened, &error, report, me).await;
        }
    };
    let mut transfer = Transfer::incoming(id.clone(), &nick, arranged.files.clone())
        .with_empty_folders(arranged.empty_folders.clone());
    transfer.accept();
    let accept = TransferMessage::Accept {
        version: TRANSFER_VERSION,
    };
    if sender.send(&accept).await.is_err() {
        landing.done();
        return Answer::Refused(format!("{nick} went away before the answer"));
    }
    start(opened, transfer, landing, summary, total, report, stop)
}

/// Refuses what `opened` asks for, telling the peer why.
async fn refuse(opened: &Opened, error: &TransferError, report: &Report, me: &str) -> Answer {
    let sender = &opened.control.sender;
    let reason = error.for_peer(me).to_string();
    let _ = sender.send(&TransferMessage::Failed { reason }).await;
    sender.flushed(FLUSH_LIMIT).await;
    let (id, nick) = (&opened.id, &opened.nick);
    let why = format!("refused {id} from {nick}: {error}");
    report.say(
        "refused",
        json!({ "id": id.as_str(), "from": nick, "error": error.to_string() }),
        &why,
    );
    Answer::Refused(why)
}

/// Starts the task that receives `transfer` into `landing`.
fn start(
    opened: Opened,
    transfer: Transfer,
    landing: Landing,
    summary: String,
    total: u64,
    report: &Report,
    stop: &CancellationToken,
) -> Answer {
    let Opened {
        peer,
        nick,
        id,
        control,
        ..
    } = opened;
    let mut progress = report.progress(id.as_str(), total, &format!("from {nick}"));
    progress.set(transfer.files.iter().map(|file| file.done).sum());
    let (lanes, lanes_rx) = mpsc::unbounded_channel();
    let report = report.clone();
    let stop = stop.clone();
    let done_id = id.clone();
    let task = tokio::spawn(async move {
        let placed =
            receiving::receive(control, lanes_rx, transfer, landing, progress, stop).await?;
        let names: Vec<String> = placed
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        report.say(
            "done",
            json!({ "id": done_id.as_str(), "from": nick, "files": names }),
            &format!("Received {summary} from {nick}: {}", names.join(", ")),
        );
        Ok(())
    });
    Answer::Receiving {
        id,
        peer,
        lanes,
        task,
    }
}

/// Asks a yes/no question on the terminal; no unless the answer starts with y.
async fn ask(question: &str, stop: &CancellationToken) -> bool {
    eprint!("{question}");
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    tokio::select! {
        line = line => matches!(line, Ok(Ok(line)) if line.trim().to_lowercase().starts_with('y')),
        () = stop.cancelled() => false,
    }
}
