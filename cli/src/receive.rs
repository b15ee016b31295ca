//! `ferry receive`: wait for offers, ask (or accept with `--yes`), and receive each accepted
//! one into the target folder; go on with transfers that paused (kept there), and answer the
//! small talk a browser opens a channel for (hello, texts).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use ferry_protocol::{
    DATA_CHANNEL_PREFIX, PeerId, TRANSFER_CHANNEL_LABEL, TransferId, TransferMessage,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::answer::{Answer, Asked, Opened, answer};
use crate::channel::{Channel, ChannelEvent};
use crate::link::Incoming;
use crate::receiving::ReceiveError;
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
    /// Transfers that failed, and why.
    pub failed: Vec<String>,
}
/// A transfer being received: who sends it and where its lanes' channels go.
struct Running {
    peer: PeerId,
    lanes: mpsc::UnboundedSender<Channel>,
}

/// What the loop keeps track of.
#[derive(Default)]
struct Book {
    running: HashMap<TransferId, Running>,
    /// Transfers that paused here because the connection broke: the loop waits for them.
    paused: HashSet<TransferId>,
    /// Offers (and resumes of transfers begun elsewhere) answered.
    answered: u32,
    outcome: Outcome,
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
    let (opened_tx, mut opened) = mpsc::unbounded_channel();
    let mut transfers: JoinSet<(TransferId, Result<(), ReceiveError>)> = JoinSet::new();
    let mut book = Book::default();
    let mut lost = session.lost.clone();
    loop {
        if book.answered >= options.count && transfers.is_empty() && book.paused.is_empty() {
            return Ok(book.outcome);
        }
        tokio::select! {
            () = stop.cancelled() => {
                // Each running transfer sees the same token and pauses, keeping what arrived.
                while let Some(done) = transfers.join_next().await {
                    if let Ok((id, result)) = done {
                        book.ended(&id, result, report);
                    }
                }
                return Ok(book.outcome);
            }
            _ = lost.changed() => {
                let why = lost.borrow().clone().unwrap_or_default();
                book.outcome.failed.push(format!("the server ended the session: {why}"));
                return Ok(book.outcome);
            }
            incoming = session.incoming.recv() => {
                let Some(incoming) = incoming else { return Ok(book.outcome) };
                route(incoming, &book.running, &opened_tx, report, session);
            }
            asked = opened.recv() => {
                let Some(asked) = asked else { continue };
                let is_offer = matches!(asked.asked, Asked::Offer { .. });
                if is_offer && book.answered >= options.count {
                    let _ = asked.control.sender.send(&TransferMessage::Decline).await;
                    continue;
                }
                let resuming_here = book.paused.remove(&asked.id);
                match answer(asked, options, report, &me, &stop).await {
                    Answer::Receiving { id, peer, lanes, task } => {
                        if !resuming_here {
                            book.answered += 1;
                        }
                        book.running.insert(id.clone(), Running { peer, lanes });
                        transfers.spawn(async move {
                            let result = task.await.unwrap_or(Err(ReceiveError::Stopped));
                            (id, result)
                        });
                    }
                    Answer::Declined => book.answered += 1,
                    Answer::Refused(why) => {
                        book.answered += u32::from(is_offer);
                        book.outcome.failed.push(why);
                    }
                    Answer::Said => {}
                }
            }
            Some(done) = transfers.join_next(), if !transfers.is_empty() => {
                if let Ok((id, result)) = done {
                    book.ended(&id, result, report);
                }
            }
        }
    }
}

impl Book {
    /// Takes the end of transfer `id`'s task.
    fn ended(&mut self, id: &TransferId, result: Result<(), ReceiveError>, report: &Report) {
        self.running.remove(id);
        match result {
            Ok(()) => self.outcome.received += 1,
            Err(error @ (ReceiveError::Paused(_) | ReceiveError::PausedHere(_))) => {
                report.say("paused", json!({ "id": id.as_str() }), &error.to_string());
                // Paused by the sender's going, it may come back while this run waits.
                if matches!(error, ReceiveError::Paused(_)) {
                    self.paused.insert(id.clone());
                }
            }
            Err(error) => {
                let words = error.to_string();
                report.say(
                    "failed",
                    json!({ "id": id.as_str(), "error": words }),
                    &words,
                );
                self.outcome.failed.push(words);
            }
        }
    }
}

/// Sends a channel a peer opened where it belongs.
fn route(
    incoming: Incoming,
    running: &HashMap<TransferId, Running>,
    opened: &mpsc::UnboundedSender<Opened>,
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
        opened.clone(),
        report.clone(),
    ));
}

/// Reads what a control channel is for: answers small talk at once, and hands the rest on.
async fn first_message(
    incoming: Incoming,
    nick: String,
    opened: mpsc::UnboundedSender<Opened>,
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
    let (id, version, asked) = match message {
        TransferMessage::Offer {
            id,
            files,
            version,
            empty_folders,
        } => (
            id,
            version,
            Asked::Offer {
                files,
                empty_folders,
            },
        ),
        TransferMessage::Resume { id, version } => (id, version, Asked::Resume),
        TransferMessage::Probe { id, version } => (id, version, Asked::Probe),
        TransferMessage::Hello => {
            let _ = sender.send(&TransferMessage::Hello).await;
            return;
        }
        TransferMessage::Text { text } => {
            report.say(
                "text",
                json!({ "from": nick, "text": text }),
                &format!("Text from {nick}: {text}"),
            );
            let _ = sender.send(&TransferMessage::Delivered).await;
            return;
        }
        _ => {
            sender.close().await;
            return;
        }
    };
    let _ = opened.send(Opened {
        peer: incoming.peer,
        nick,
        id,
        version,
        asked,
        control,
    });
}
