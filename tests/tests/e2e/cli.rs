//! `ferry`, the command-line peer, with the browsers and with itself: it sends to a Chromium
//! page that accepts, receives a folder a Firefox page sends, moves 256 MiB to another
//! `ferry`, and goes through the TURN relay when the server says relayed paths only.

use std::time::Duration;

use anyhow::{Result, ensure};
use ferry_e2e::cli::{Run, Terminal};
use ferry_e2e::folders::{disk_tree, drop_tree, same_tree, sample_tree};
use ferry_e2e::{
    Harness, Kind, PRIVATE_IP, Relay, Setup, SourceFile, User, finished_download, random_file, run,
    run_with,
};
use ferry_signaling::{IceConfig, TurnRest, TurnSecret};
use serde_json::Value;

/// The secret the relay checks credentials with.
const SECRET: &str = "ferry-e2e-cli-relay-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_sends_a_file_that_a_chromium_page_accepts() -> Result<()> {
    run(async |h: &Harness| {
        let bo = h.open_user("bo").await?;
        bo.join("bo").await?;
        let file = random_file(h.files_dir(), "from the terminal.bin", 24 << 20, 31).await?;
        let ana = Terminal::new("ana", &h.server().url())?;
        let path = file.path.display().to_string();
        let send = ana.start(&["send", "--to", "bo", &path])?;
        let offer = bo.incoming_offer().await?;
        ensure!(
            offer.contains("ana") && offer.contains(&file.name),
            "the offer should name ana and {:?}, but reads {offer:?}",
            file.name
        );
        bo.accept().await?;
        let events = succeeded(send).await?;
        ensure!(
            events.last().is_some_and(|event| event["event"] == "done"),
            "ferry send's last word should be done: {events:?}"
        );
        bo.wait_status(&file.name, "Complete", |status| status == "Complete")
            .await?;
        let saved = finished_download(bo.downloads(), &file.name).await?;
        file.check_received(&saved).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firefox_page_sends_a_folder_that_ferry_receives_as_its_tree() -> Result<()> {
    run(async |h: &Harness| {
        let target = tempfile::tempdir()?;
        let bo = Terminal::new("bo", &h.server().url())?;
        let dir = target.path().display().to_string();
        let mut receive = bo.start(&["receive", "--yes", "--dir", &dir])?;
        receive.event("joined").await?;
        let ana = h.open_user_in("ana", Kind::Firefox).await?;
        ana.join("ana").await?;
        ana.wait_online_users(&["bo"]).await?;
        let tree = sample_tree();
        ana.select("bo").await?;
        drop_tree(&ana, &tree).await?;
        ana.press_send().await?;
        let offer = receive.event("offer").await?;
        ensure!(offer["from"] == "ana", "the offer comes from ana: {offer}");
        succeeded(receive).await?;
        ana.wait_status("Fotos día", "Complete", |status| status == "Complete")
            .await?;
        same_tree("the target folder", &disk_tree(target.path())?, &tree)
    })
    .await
}

/// Starts `ferry receive --yes` as bo into a fresh folder, then `ferry send` of `file` as ana,
/// and checks the bytes that landed.
async fn terminal_to_terminal(ana: &Terminal, bo: &Terminal, file: &SourceFile) -> Result<()> {
    let target = tempfile::tempdir()?;
    let dir = target.path().display().to_string();
    let mut receive = bo.start(&["receive", "--yes", "--dir", &dir])?;
    receive.event("joined").await?;
    let path = file.path.display().to_string();
    succeeded(ana.start(&["send", "--to", "bo", &path])?).await?;
    succeeded(receive).await?;
    file.check_received(&target.path().join(&file.name)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ferry_sends_256_mib_to_another() -> Result<()> {
    run(async |h: &Harness| {
        let file = random_file(h.files_dir(), "quarter.bin", 256 << 20, 41).await?;
        let ana = Terminal::new("ana", &h.server().url())?;
        let bo = Terminal::new("bo", &h.server().url())?;
        terminal_to_terminal(&ana, &bo, &file).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_relay_only_server_ferry_goes_through_the_relay() -> Result<()> {
    let relay = Relay::start(PRIVATE_IP, SECRET).await?;
    let setup = Setup {
        ice: IceConfig {
            fixed: Vec::new(),
            turn: Some(TurnRest {
                urls: vec![relay.url()],
                secret: TurnSecret::new(SECRET),
                ttl: Duration::from_secs(3600),
            }),
            relay_only: true,
        },
        ..Setup::default()
    };
    run_with(setup, async |h: &Harness| {
        let file = random_file(h.files_dir(), "relayed.bin", 24 << 20, 42).await?;
        let ana = Terminal::new("ana", &h.server().url())?.bound_to(PRIVATE_IP.into());
        let bo = Terminal::new("bo", &h.server().url())?.bound_to(PRIVATE_IP.into());
        terminal_to_terminal(&ana, &bo, &file).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_stopped_with_ctrl_c_pauses_and_the_same_send_resumes_without_resending() -> Result<()>
{
    run(async |h: &Harness| {
        let bo = h.open_user("bo").await?;
        bo.join("bo").await?;
        let file = random_file(h.files_dir(), "stopped midway.bin", 256 << 20, 43).await?;
        let ana = Terminal::new("ana", &h.server().url())?;
        let path = file.path.display().to_string();
        let send = ["send", "--to", "bo", path.as_str()];
        let first = ana.start(&send)?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        let arrived = bo.wait_progress_at_least(&file.name, 32 << 20).await?;
        stop_with_ctrl_c(first, &bo, &file.name).await?;
        let mut second = ana.start(&send)?;
        held_at_least(&second.event("resumed").await?, arrived, file.len)?;
        succeeded(second).await?;
        bo.wait_status(&file.name, "Complete", |status| status == "Complete")
            .await?;
        let saved = finished_download(bo.downloads(), &file.name).await?;
        file.check_received(&saved).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_receive_stopped_with_ctrl_c_goes_on_from_its_folder_when_run_again() -> Result<()> {
    run(async |h: &Harness| {
        let target = tempfile::tempdir()?;
        let dir = target.path().display().to_string();
        let receive = ["receive", "--yes", "--dir", dir.as_str()];
        let bo = Terminal::new("bo", &h.server().url())?;
        let mut first = bo.start(&receive)?;
        first.event("joined").await?;
        let ana = h.open_user("ana").await?;
        ana.join("ana").await?;
        let file = random_file(h.files_dir(), "paused here.bin", 256 << 20, 44).await?;
        ana.send("bo", &[&file]).await?;
        let progress = first
            .event_where("progress", |event| {
                event["done"].as_u64().is_some_and(|done| done >= 32 << 20)
            })
            .await?;
        stop_with_ctrl_c(first, &ana, &file.name).await?;
        let mut second = bo.start(&receive)?;
        let arrived = progress["done"].as_u64().unwrap_or_default();
        held_at_least(&second.event("resumed").await?, arrived, file.len)?;
        succeeded(second).await?;
        ana.wait_status(&file.name, "Complete", |status| status == "Complete")
            .await?;
        file.check_received(&target.path().join(&file.name)).await?;
        ensure!(
            !target.path().join(".ferry").exists(),
            "the partial files and their record are gone once the file is whole"
        );
        Ok(())
    })
    .await
}

/// Stops `ferry` with SIGINT, as Ctrl-C does: it must say it paused and end with 130, and
/// `peer`'s row of `file` must say paused.
async fn stop_with_ctrl_c(run: Run, peer: &User, file: &str) -> Result<()> {
    run.interrupt()?;
    let (code, events) = run.finish().await?;
    ensure!(code == 130, "Ctrl-C ended ferry with {code}: {events:?}");
    ensure!(
        events.iter().any(|event| event["event"] == "paused"),
        "ferry should say it paused: {events:?}"
    );
    peer.wait_status(file, "Paused", |status| status.starts_with("Paused"))
        .await?;
    Ok(())
}

/// Checks a `resumed` event: the receiver held at least what had `arrived`, and not all `len`.
fn held_at_least(resumed: &Value, arrived: u64, len: u64) -> Result<()> {
    let held = resumed["held"].as_u64().unwrap_or_default();
    ensure!(
        held >= arrived && held < len,
        "the receiver held {held} bytes on resuming, where {arrived} had arrived: {resumed}"
    );
    Ok(())
}

/// Waits for `ferry` to end, which it must do with 0; returns what it said.
async fn succeeded(run: Run) -> Result<Vec<Value>> {
    let (code, events) = run.finish().await?;
    ensure!(code == 0, "ferry ended with {code}: {events:?}");
    Ok(events)
}
