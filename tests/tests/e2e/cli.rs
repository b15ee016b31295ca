//! `ferry`, the command-line peer, with the browsers: it sends to a Chromium page that accepts,
//! and receives a folder a Firefox page sends, byte for byte and tree for tree.

use anyhow::{Result, ensure};
use ferry_e2e::cli::Terminal;
use ferry_e2e::folders::{disk_tree, drop_tree, same_tree, sample_tree};
use ferry_e2e::{Harness, Kind, finished_download, random_file, run};

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
        let (code, events) = send.finish().await?;
        ensure!(code == 0, "ferry send ended with {code}: {events:?}");
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
        let (code, events) = receive.finish().await?;
        ensure!(code == 0, "ferry receive ended with {code}: {events:?}");
        ana.wait_status("Fotos día", "Complete", |status| status == "Complete")
            .await?;
        same_tree("the target folder", &disk_tree(target.path())?, &tree)
    })
    .await
}
