//! `ferry`, the command-line peer, measured like the browsers: to another `ferry`, to a
//! browser, and from one. Where a `ferry` receives, the time runs from its `offer` event
//! (it accepts at once, `--yes`) to its `done` event, both stamped by its own clock; where a
//! browser receives, the page's timer runs from Accept to "Complete", as for the app.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use ferry_e2e::cli::{Run as Cli, Terminal};
use ferry_e2e::{Harness, SourceFile, finished_download};
use serde_json::Value;

use crate::sampler::{Sampler, Watched};
use crate::{Args, Run, accept_timed, load_average};

/// Which ends are `ferry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `ferry` to `ferry`.
    Both,
    /// `ferry` to the receiver's browser.
    ToBrowser,
    /// The sender's browser to `ferry`.
    FromBrowser,
}

/// One transfer of `file` along `route`, checked byte for byte where it landed.
pub async fn run(
    harness: &Harness,
    args: &Args,
    route: Route,
    file: &SourceFile,
    timeout: Duration,
) -> Result<Run> {
    let url = harness.server().url();
    let path = file.path.display().to_string();
    let target = tempfile::tempdir()?;
    let dir = target.path().display().to_string();
    let receive = ["receive", "--yes", "--dir", &dir];
    let send = ["send", "--to", "bo", &path];
    let run = match route {
        Route::Both => {
            let bo = Terminal::new("bo", &url)?;
            let ana = Terminal::new("ana", &url)?;
            let mut receiving = bo.start(&receive)?;
            receiving.event("joined").await?;
            let sending = ana.start(&send)?;
            let sampler = Sampler::watching([pid(&receiving)?, pid(&sending)?]);
            let seconds = timed(&mut receiving, timeout).await;
            let [receiver, sender] = sampler.stop().await?;
            let seconds = seconds?;
            finished(sending).await?;
            finished(receiving).await?;
            Run::plain(seconds, receiver, sender, load_average()?)
        }
        Route::FromBrowser => {
            let bo = Terminal::new("bo", &url)?;
            let mut receiving = bo.start(&receive)?;
            receiving.event("joined").await?;
            let ana = harness.open_user_in("ana", args.sender).await?;
            ana.join("ana").await?;
            ana.wait_online_users(&["bo"]).await?;
            let sampler = Sampler::watching([pid(&receiving)?, Watched::of(&ana)]);
            ana.send("bo", &[file]).await?;
            let seconds = timed(&mut receiving, timeout).await;
            let [receiver, sender] = sampler.stop().await?;
            let seconds = seconds?;
            finished(receiving).await?;
            Run::plain(seconds, receiver, sender, load_average()?)
        }
        Route::ToBrowser => {
            let bo = harness.open_user_in("bo", args.receiver).await?;
            bo.join("bo").await?;
            let ana = Terminal::new("ana", &url)?;
            let sending = ana.start(&send)?;
            let (seconds, [receiver, sender]) = accept_timed(&bo, pid(&sending)?, timeout).await?;
            finished(sending).await?;
            let saved = finished_download(bo.downloads(), &file.name).await?;
            file.check_received(&saved).await?;
            return Ok(Run::plain(seconds, receiver, sender, load_average()?));
        }
    };
    file.check_received(&target.path().join(&file.name)).await?;
    Ok(run)
}

fn pid(run: &Cli) -> Result<Watched> {
    Ok(Watched::Terminal(run.pid().context("ferry already ended")?))
}

/// The seconds between a receiving `ferry`'s `offer` and `done` events.
async fn timed(receiving: &mut Cli, timeout: Duration) -> Result<f64> {
    let at = |event: &Value| event["at"].as_f64().context("an event without its time");
    let waited = tokio::time::timeout(timeout, async {
        let offer = receiving.event("offer").await?;
        let done = receiving.event("done").await?;
        Ok::<_, anyhow::Error>((at(&done)? - at(&offer)?) / 1000.0)
    })
    .await;
    waited.context("the transfer did not end in time")?
}

async fn finished(run: Cli) -> Result<()> {
    let (code, events) = run.finish().await?;
    ensure!(code == 0, "ferry ended with {code}: {events:?}");
    Ok(())
}
