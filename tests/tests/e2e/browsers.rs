//! Firefox and Chromium, both ways: every scenario with the sender in one browser and the
//! receiver in the other, and Firefox to Firefox for a large file. A pair of browsers is
//! shared by the scenarios its state allows, one after another, to keep the suite's wall time
//! down; only what ends a pair (a restarted server, a closed tab) comes last.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use ferry_e2e::webrtc::watch_webrtc;
use ferry_e2e::{Harness, Kind, User, random_file, run};

use crate::resume::resumes_after_a_break;
use crate::{
    LONG_TRANSFER, OUTAGE_TRANSFER, VANISHED_PEER_DEADLINE, expect_downloads, expect_received,
    start_transfer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_sends_to_chromium() -> Result<()> {
    run(async |h: &Harness| every_scenario(h, Kind::Firefox, Kind::Chromium).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sends_to_firefox() -> Result<()> {
    run(async |h: &Harness| every_scenario(h, Kind::Chromium, Kind::Firefox).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_sends_64_mib_to_firefox() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo_in(Kind::Firefox, Kind::Firefox).await?;
        let file = random_file(h.files_dir(), "firefox-to-firefox.bin", 64 << 20, 31).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await
    })
    .await
}

/// Ana in `sender`, Bo in `receiver`: they see each other, files of every size arrive, a
/// three-file offer arrives whole, a decline and a cancel from each side save nothing, a
/// transfer goes on by itself after its connections broke, a transfer survives a server
/// restart, and one pauses at once when Bo's tab closes.
async fn every_scenario(h: &Harness, sender: Kind, receiver: Kind) -> Result<()> {
    let (ana, bo) = h.ana_and_bo_in(sender, receiver).await?;
    let step = |name: &'static str| move || format!("{sender} to {receiver}: {name}");
    // Before Ana's page makes its first connection, so a later step can break them all.
    watch_webrtc(&ana).await?;

    // Both browsers keep what they receive in their private file system, not in memory.
    let probe = random_file(h.files_dir(), "probe.txt", 10, 39).await?;
    ana.send("bo", &[&probe]).await?;
    let offer = bo.incoming_offer().await?;
    ensure!(
        !offer.contains("in memory"),
        "{receiver} can only keep files in memory: {offer:?}"
    );
    bo.accept().await?;
    expect_received(&ana, &bo, &probe).await?;

    let mut sent = vec![probe];
    for (seed, (name, len)) in (40..).zip([
        ("empty.bin", 0),
        ("one-byte.bin", 1),
        ("día de café 🚢.txt", 10_000),
        ("random-64MiB.bin", 64 << 20),
    ]) {
        let file = random_file(h.files_dir(), name, len, seed).await?;
        transfer(&ana, &bo, &file)
            .await
            .with_context(step("files of every size"))?;
        sent.push(file);
    }
    let three = [
        random_file(h.files_dir(), "first.bin", 3 << 20, 50).await?,
        random_file(h.files_dir(), "second file.txt", (1 << 20) + 17, 51).await?,
        random_file(h.files_dir(), "third.dat", 200_000, 52).await?,
    ];
    ana.send("bo", &three.iter().collect::<Vec<_>>()).await?;
    bo.incoming_offer().await?;
    bo.accept().await?;
    for file in &three {
        expect_received(&ana, &bo, file)
            .await
            .with_context(step("a three-file offer"))?;
    }
    sent.extend(three);
    expect_downloads(&bo, &sent).await?;

    let unwanted = random_file(h.files_dir(), "unwanted.bin", 1 << 20, 53).await?;
    ana.send("bo", &[&unwanted]).await?;
    bo.incoming_offer().await?;
    bo.decline().await?;
    ana.wait_status(&unwanted.name, "Declined", |status| status == "Declined")
        .await
        .with_context(step("a decline"))?;

    let by_sender = random_file(h.files_dir(), "cancelled-by-ana.bin", LONG_TRANSFER, 54).await?;
    let by_receiver = random_file(h.files_dir(), "cancelled-by-bo.bin", LONG_TRANSFER, 55).await?;
    for (file, canceller) in [(&by_sender, &ana), (&by_receiver, &bo)] {
        start_transfer(&ana, &bo, file).await?;
        canceller.cancel(&file.name).await?;
        for user in [&ana, &bo] {
            user.wait_status(&file.name, "Cancelled", |status| status == "Cancelled")
                .await
                .with_context(step("a cancel"))?;
        }
    }
    // Nothing of the declined or cancelled files was saved: a marker sent now is the only
    // new file. Had the app started a download of them, it would be there before the marker.
    let marker = random_file(h.files_dir(), "marker.txt", 1000, 99).await?;
    transfer(&ana, &bo, &marker).await?;
    sent.push(marker);
    expect_downloads(&bo, &sent)
        .await
        .with_context(step("nothing saved of what was declined or cancelled"))?;

    let report = resumes_after_a_break(h, &ana, &bo, "broken-off.bin", 58)
        .await
        .with_context(step("a broken connection"))?;
    eprintln!("{sender} to {receiver}: {report}");

    survive_a_server_restart(h, &ana, &bo)
        .await
        .with_context(step("a server restart mid-transfer"))?;

    let abandoned = random_file(h.files_dir(), "abandoned.bin", LONG_TRANSFER, 57).await?;
    start_transfer(&ana, &bo, &abandoned).await?;
    let closed = std::time::Instant::now();
    bo.close_tab().await?;
    let status = ana
        .wait_status_within(
            &abandoned.name,
            "\"Paused — waiting for bo\"",
            Duration::from_secs(60),
            |s| s == "Paused — waiting for bo",
        )
        .await
        .with_context(step("the receiver's tab closing"))?;
    let took = closed.elapsed();
    ensure!(
        took < VANISHED_PEER_DEADLINE,
        "{sender} saw {status:?} {took:?} after the {receiver} tab closed"
    );
    Ok(())
}

/// Ana offers `file`, Bo accepts, and it arrives byte-identical. Until Bo accepts, the offer
/// is all he sees of it (no row says "Receiving"), and his tab's title says an offer waits.
async fn transfer(ana: &User, bo: &User, file: &ferry_e2e::SourceFile) -> Result<()> {
    ana.send("bo", &[file]).await?;
    bo.incoming_offer().await?;
    let row = bo.status(&file.name).await?;
    ensure!(row.is_none(), "before Accept, Bo's list says {row:?}");
    let title = bo.title().await?;
    ensure!(
        title == "(1) Ferry — offer from ana",
        "with an offer waiting, Bo's tab is titled {title:?}"
    );
    bo.accept().await?;
    expect_received(ana, bo, file).await
}

/// A transfer keeps going while the signaling server stops and starts again, and both users
/// see each other again afterwards.
async fn survive_a_server_restart(h: &Harness, ana: &User, bo: &User) -> Result<()> {
    let file = random_file(h.files_dir(), "through-the-outage.bin", OUTAGE_TRANSFER, 56).await?;
    start_transfer(ana, bo, &file).await?;
    h.server().stop().await?;
    for user in [ana, bo] {
        user.wait_connection_banner().await?;
    }
    h.server().restart().await?;
    ana.wait_online_users(&["bo"]).await?;
    bo.wait_online_users(&["ana"]).await?;
    expect_received(ana, bo, &file).await
}
