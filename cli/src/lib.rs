//! `ferry`, the command-line peer: joins a Ferry server as browsers do and sends files to them,
//! or receives theirs, over the same WebRTC data channels and the same versioned protocol.

mod answer;
pub mod args;
mod channel;
mod disk;
mod link;
mod profile;
mod receive;
mod receiving;
mod report;
mod send;
mod sending;
mod sent;
mod session;
mod signaling;
mod sockets;
mod sources;
mod tls;

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::args::{ArgError, Cli, Command};
use crate::link::LinkSettings;
use crate::profile::{Profile, ProfileError};
use crate::report::Report;
use crate::send::SendError;
use crate::sent::SentRecords;
use crate::session::Session;
use crate::signaling::{Connection, JoinError};
use crate::sources::{SourceError, Sources};
use crate::tls::{Trust, TrustError};

/// How long a send waits for the one it names to be listed, when they just joined.
const JOIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// The exit status of a run stopped with Ctrl-C, as shells report a SIGINT.
const INTERRUPTED: u8 = 130;

/// Why a run could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// The certificate settings.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The config folder.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Joining the server.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The files to send.
    #[error(transparent)]
    Sources(#[from] SourceError),
    /// Sending.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The target folder.
    #[error("cannot use the target folder {path}: {reason}")]
    Target {
        /// The folder.
        path: String,
        /// Why.
        reason: String,
    },
    /// Some transfers failed.
    #[error("{0}")]
    Received(String),
}

/// Runs the command `cli` names until it is done or `stop` is cancelled (Ctrl-C).
///
/// # Errors
/// When it cannot be done, as [`Error`] says.
pub async fn run(cli: Cli, stop: CancellationToken) -> Result<ExitCode, Error> {
    let endpoint = cli.common.endpoint()?;
    let trust = Trust::from_options(cli.common.ca.as_deref(), cli.common.fingerprint.as_deref())?;
    let tls = (endpoint.socket.scheme() == "wss")
        .then(|| trust.client_config().map(Arc::new))
        .transpose()?;
    // The files are read before joining, so a typo costs no one a join and a leave.
    let sources = match &cli.command {
        Command::Send { paths, .. } => Some(Sources::gather(paths)?),
        _ => None,
    };
    let profile = Profile::open(cli.common.config_dir.as_deref())?;
    let nick = profile.nick(cli.common.nick.as_deref())?;
    let origin = endpoint.origin.to_string();
    let certificate = profile.device_key()?;
    let connection_place = endpoint.place.clone();
    let connection = Connection { endpoint, tls };
    let joined = signaling::join(connection, &nick, profile.token(&origin)).await?;
    let welcome = joined.welcome.clone();
    profile.keep_token(&origin, &welcome.token)?;
    let report = Report::new(cli.common.json);
    report.say(
        "joined",
        json!({ "nick": welcome.nick }),
        &format!("Joined {origin} as {}.", welcome.nick),
    );
    let room = welcome.room.clone().or(match &connection_place {
        ferry_protocol::Place::Room(room) => Some(room.clone()),
        _ => None,
    });
    if let Some(room) = &room {
        let link = ferry_core::place::link(origin.trim_end_matches('/'), room);
        report.say("room", json!({ "link": link }), &format!("Room: {link}"));
    }
    let settings = LinkSettings {
        me: welcome.id.clone(),
        ice_servers: welcome.ice_servers.clone(),
        relay_only: welcome.relay_only,
        certificate,
        bind: cli.common.bind,
        window: sockets::receive_window(),
        outbox: joined.outbox.clone(),
    };
    let mut session = Session::start(joined, settings);
    let result = match cli.command {
        Command::Who => {
            who(&session, &report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Send { to, .. } => {
            let sources = sources.unwrap_or_default();
            send_to(&session, &profile, &report, &to, &sources, stop).await
        }
        Command::Receive {
            dir,
            yes,
            from,
            count,
        } => {
            let options = receive::Options {
                dir,
                yes,
                from,
                count,
            };
            receive_into(&mut session, &report, &options, stop).await
        }
    };
    session.leave().await;
    result
}

fn who(session: &Session, report: &Report) {
    let users = session.roster.borrow().clone();
    let nicks: Vec<&str> = users.iter().map(|user| user.nick.as_str()).collect();
    let words = if nicks.is_empty() {
        "Nobody else is here.".to_owned()
    } else {
        nicks.join("\n")
    };
    report.say("users", json!({ "users": nicks }), &words);
}

async fn send_to(
    session: &Session,
    profile: &Profile,
    report: &Report,
    to: &str,
    sources: &Sources,
    stop: CancellationToken,
) -> Result<ExitCode, Error> {
    let peer = session
        .wait_for(to, JOIN_PATIENCE)
        .await
        .ok_or_else(|| SendError::Unknown(to.to_owned()))?;
    let records = SentRecords::in_dir(&profile.sent_dir());
    match send::send(session, report, &records, &peer, sources, stop).await {
        Ok(()) => {
            let nick = peer.nick.as_str();
            report.say(
                "done",
                json!({ "to": nick, "files": sources.files.len() }),
                &format!("{nick} has every file, each checked."),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(SendError::Cancelled) => {
            report.say(
                "cancelled",
                json!({}),
                "Cancelled; the other side was told.",
            );
            Ok(ExitCode::from(INTERRUPTED))
        }
        Err(error @ SendError::Paused(_)) => {
            let words = format!("Paused: {error}.");
            report.say("paused", json!({ "to": peer.nick.as_str() }), &words);
            Ok(ExitCode::from(INTERRUPTED))
        }
        Err(error) => Err(error.into()),
    }
}

async fn receive_into(
    session: &mut Session,
    report: &Report,
    options: &receive::Options,
    stop: CancellationToken,
) -> Result<ExitCode, Error> {
    let outcome = receive::listen(session, report, options, stop.clone())
        .await
        .map_err(|error| Error::Target {
            path: options.dir.display().to_string(),
            reason: error.to_string(),
        })?;
    if stop.is_cancelled() {
        return Ok(ExitCode::from(INTERRUPTED));
    }
    if !outcome.failed.is_empty() {
        return Err(Error::Received(outcome.failed.join("; ")));
    }
    Ok(if outcome.received > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
