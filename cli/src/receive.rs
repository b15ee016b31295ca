//! `ferry receive`: wait for offers, ask (or accept with `--yes`), and receive each accepted
//! one into the target folder; answer the small talk a browser opens a channel for (hello,
//! texts, questions about transfers this side no longer holds).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ferry_core::offer::IncomingOffer;
use ferry_core::paths::arrange;
use ferry_core::transfer::{Transfer, TransferError, check_version, no_longer_held};
use ferry_protocol::{
    DATA_CHANNEL_PREFIX, FileMeta, PeerId, TRANSFER_CHANNEL_LABEL, TRANSFER_VERSION, TransferId,
    TransferMessage,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, ChannelEvent, FLUSH_LIMIT};
use crate::disk::Landing;
use crate::link::Incoming;
use crate::receiving::{self, ReceiveError};
use crate::report::Report;
use crate::session::Session;

/// How long a channel a peer opened may take to say what it is for.
const FIRST_MESSAGE_DEADLINE: Duration = Duration::from_secs(30);

/// What `ferry receive` was told.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where files go.
    pub dir: PathBuf,
    /// Accept without asking.
    pub yes: bool,
    /// Take offers from this nick only.
    pub from: Option<String>,
    /// How many offers to answer before stopping.
    pub count: u32,
}

/// How receiving went.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Transfers that arrived whole.
    pub received: u32,
    /// Offers declined.
    pub declined: u32,
    /// Transfers that failed, and why.
    pub failed: Vec<String>,
}

/// An offer that came in, with its channel.
struct Offered {
    peer: PeerId,
    nick: String,
    id: TransferId,
    files: Vec<FileMeta>,
    empty_folders: Vec<String>,
    version: u32,
    control: Channel,
}

/// A transfer being received: where its lanes' channels go, and how to cancel it.
struct Running {
    peer: PeerId,
    lanes: mpsc::UnboundedSender<Channel>,
}

/// Answers offers until `options.count` were answered and the accepted ones ended.
///
/// # Errors
/// When the target folder cannot be used.
pub async fn listen(
    session: &mut Session,
    report: &Report,
    options: &Options,
    stop: CancellationToken,
) -> Result<Outcome, std::io::Error> {
    std::fs::create_dir_all(&options.dir)?;
    let me = session.welcome.nick.clone();
    let (offers_tx, mut offers) = mpsc::unbounded_channel();
    let mut running: HashMap<TransferId, Running> = HashMap::new();
    let mut transfers: JoinSet<(TransferId, Result<(), ReceiveError>)> = JoinSet::new();
    let mut outcome = Outcome::default();
    let mut answered = 0;
    let mut lost = session.lost.clone();
    loop {
        if answered >= options.count && transfers.is_empty() {
            return Ok(outcome);
        }
        tokio::select! {
            () = stop.cancelled() => {
                // Each running transfer sees the same token, tells its sender and cleans up.
                while let Some(done) = transfers.join_next().await {
                    if let Ok((_, Err(error))) = done {
                        outcome.failed.push(error.to_string());
                    }
                }
                return Ok(outcome);
            }
            _ = lost.changed() => {
                let why = lost.borrow().clone().unwrap_or_default();
                outcome.failed.push(format!("the server ended the session: {why}"));
                return Ok(outcome);
            }
            incoming = session.incoming.recv() => {
                let Some(incoming) = incoming else { return Ok(outcome) };
                route(incoming, &running, &offers_tx, &me, report, session);
            }
            offered = offers.recv() => {
                let Some(offered) = offered else { continue };
                if answered >= options.count {
                    let _ = offered.control.sender.send(&TransferMessage::Decline).await;
                    continue;
                }
                answered += 1;
                match answer(offered, options, report, &me, &stop).await {
                    Answer::Accepted { id, peer, lanes, task } => {
                        running.insert(id.clone(), Running { peer, lanes });
                        transfers.spawn(async move {
                            let result = task.await.unwrap_or(Err(ReceiveError::CancelledHere));
                            (id, result)
                        });
                    }
                    Answer::Declined => outcome.declined += 1,
                    Answer::Refused(why) => outcome.failed.push(why),
                }
            }
            Some(done) = transfers.join_next(), if !transfers.is_empty() => {
                if let Ok((id, result)) = done {
                    running.remove(&id);
                    match result {
                        Ok(()) => outcome.received += 1,
                        Err(error) => {
                            report.say("failed", json!({ "id": id.as_str(), "error": error.to_string() }), &error.to_string());
                            outcome.failed.push(error.to_string());
                        }
                    }
                }
            }
        }
    }
}

/// Sends a channel a peer opened where it belongs.
fn route(
    incoming: Incoming,
    running: &HashMap<TransferId, Running>,
    offers: &mpsc::UnboundedSender<Offered>,
    me: &str,
    report: &Report,
    session: &Session,
) {
    if let Some(id) = incoming.label.strip_prefix(DATA_CHANNEL_PREFIX) {
        let lane = TransferId::parse(id)
            .ok()
            .and_then(|id| running.get(&id))
            .filter(|running| running.peer == incoming.peer);
        match lane {
            Some(running) => {
                let _ = running.lanes.send(incoming.channel);
            }
            // A late lane of a transfer that is not running here: nothing on it counts.
            None => {
                let sender = incoming.channel.sender.clone();
                tokio::spawn(async move { sender.close().await });
            }
        }
        return;
    }
    if incoming.label != TRANSFER_CHANNEL_LABEL {
        let sender = incoming.channel.sender.clone();
        tokio::spawn(async move { sender.close().await });
        return;
    }
    let nick = session.nick_of(&incoming.peer);
    tokio::spawn(first_message(
        incoming,
        nick,
        me.to_owned(),
        offers.clone(),
        report.clone(),
    ));
}

/// Reads what a control channel is for, and answers it unless it is an offer.
async fn first_message(
    incoming: Incoming,
    nick: String,
    me: String,
    offers: mpsc::UnboundedSender<Offered>,
    report: Report,
) {
    let mut control = incoming.channel;
    let first = tokio::time::timeout(FIRST_MESSAGE_DEADLINE, async {
        loop {
            match control.next().await {
                ChannelEvent::Message(message) => return Some(message),
                ChannelEvent::Open => {}
                _ => return None,
            }
        }
    })
    .await;
    let Ok(Some(message)) = first else {
        control.sender.close().await;
        return;
    };
    let sender = control.sender.clone();
    match message {
        TransferMessage::Offer {
            id,
            files,
            version,
            empty_folders,
        } => {
            let _ = offers.send(Offered {
                peer: incoming.peer,
                nick,
                id,
                files,
                empty_folders,
                version,
                control,
            });
        }
        TransferMessage::Hello => {
            let _ = sender.send(&TransferMessage::Hello).await;
        }
        TransferMessage::Text { text } => {
            report.say(
                "text",
                json!({ "from": nick, "text": text }),
                &format!("Text from {nick}: {text}"),
            );
            let _ = sender.send(&TransferMessage::Delivered).await;
        }
        TransferMessage::Resume { .. } | TransferMessage::Probe { .. } => {
            let _ = sender.send(&no_longer_held(&me)).await;
        }
        _ => sender.close().await,
    }
}

enum Answer {
    Accepted {
        id: TransferId,
        peer: PeerId,
        lanes: mpsc::UnboundedSender<Channel>,
        task: tokio::task::JoinHandle<Result<(), ReceiveError>>,
    },
    Declined,
    Refused(String),
}

/// Asks about an offer (or takes it, with `--yes`) and starts receiving it.
async fn answer(
    offered: Offered,
    options: &Options,
    report: &Report,
    me: &str,
    stop: &CancellationToken,
) -> Answer {
    let Offered {
        peer,
        nick,
        id,
        files,
        empty_folders,
        version,
        control,
    } = offered;
    let sender = control.sender.clone();
    let refuse = async |error: TransferError| {
        let reason = error.for_peer(me).to_string();
        let _ = sender.send(&TransferMessage::Failed { reason }).await;
        sender.flushed(FLUSH_LIMIT).await;
        let why = format!("refused an offer from {nick}: {error}");
        report.say(
            "refused",
            json!({ "id": id.as_str(), "from": nick, "error": error.to_string() }),
            &why,
        );
        Answer::Refused(why)
    };
    if let Err(error) = check_version(&nick, version) {
        return refuse(error).await;
    }
    let arranged = match arrange(&files, &empty_folders) {
        Ok(arranged) => arranged,
        Err(error) => return refuse(TransferError::UnsafePath(error)).await,
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
    report.say(
        "offer",
        json!({ "id": id.as_str(), "from": nick, "files": files.len(), "bytes": offer.total_size() }),
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
            return refuse(TransferError::Local(ferry_core::transfer::LocalError {
                doing: "preparing the target folder",
                what: error.to_string(),
            }))
            .await;
        }
    };
    let mut transfer = Transfer::incoming(id.clone(), &nick, arranged.files.clone())
        .with_empty_folders(arranged.empty_folders.clone());
    transfer.accept();
    if sender
        .send(&TransferMessage::Accept {
            version: TRANSFER_VERSION,
        })
        .await
        .is_err()
    {
        landing.abandon();
        return Answer::Refused(format!("{nick} went away before the answer"));
    }
    let progress = report.progress(id.as_str(), offer.total_size(), &format!("from {nick}"));
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
    Answer::Accepted {
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
