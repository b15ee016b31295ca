//! Ferry end to end: two people, each in a real Chromium of their own, use the app served by the
//! real signaling server, and the bytes their browsers save are checked on disk.
//!
//! Every scenario drives the app only through what a person sees (roles, accessible names and
//! visible text), waits for what it expects by polling with a generous deadline, and runs alone:
//! the harness makes scenarios take turns, because each one keeps two browsers busy.

mod browsers;
mod cli;
mod folders;
mod instances;
mod people;
mod phone;
mod reach;
mod resume;
mod rooms;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use ferry_e2e::{
    Harness, SourceFile, User, finished_download, listing, random_file, run, sparse_file,
};

/// Big enough that a transfer is still running many seconds after its first bytes moved, so a
/// test can interrupt it: two Chromium processes on two cores move some 20–35 MB/s.
pub(crate) const LONG_TRANSFER: u64 = 512 << 20;

/// Long enough to outlast stopping the server, both banners showing and the restart (well
/// under a second), yet short enough to wait for its completion and compare its bytes.
pub(crate) const OUTAGE_TRANSFER: u64 = 256 << 20;

/// Within this much of Bo's tab closing, Ana must see the transfer paused.
pub(crate) const VANISHED_PEER_DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_see_each_other_a_taken_nick_is_refused_and_leaving_is_seen() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;

        let third = h.open_user("a third person").await?;
        let refusal = third.join_refused("ANA").await?;
        ensure!(
            refusal.to_lowercase().contains("taken") || refusal.to_lowercase().contains("use"),
            "the refusal of \"ANA\" should say the nick is taken, but says {refusal:?}"
        );
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;

        bo.close_tab().await?;
        ana.wait_online_users(&[]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_size_arrive_byte_identical_under_their_names() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        // Each file's name and length, and the size the offer must show for it.
        let cases = [
            ("empty.bin", 0, "0 B"),
            ("one-byte.bin", 1, "1 B"),
            ("día de café 🚢.txt", 10_000, "10.0 kB"),
            ("random-64MiB.bin", 64 << 20, "67.1 MB"),
        ];
        let mut sent = Vec::new();
        for (seed, (name, len, size)) in (1..).zip(cases) {
            let file = random_file(h.files_dir(), name, len, seed).await?;
            ana.send("bo", &[&file]).await?;
            let offer = bo.incoming_offer().await?;
            ensure!(
                offer.contains("ana") && offer.contains(name) && offer.contains(size),
                "the offer should name ana, {name:?} and its size {size:?}, but reads {offer:?}"
            );
            bo.accept().await?;
            expect_received(&ana, &bo, &file).await?;
            sent.push(file);
        }
        expect_downloads(&bo, &sent).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_offer_says_declined_and_saves_nothing() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let unwanted = random_file(h.files_dir(), "unwanted.bin", 1 << 20, 5).await?;
        ana.send("bo", &[&unwanted]).await?;
        bo.incoming_offer().await?;
        bo.decline().await?;
        ana.wait_status(&unwanted.name, "Declined", |status| status == "Declined")
            .await?;
        send_marker_and_expect_only_it(h, &ana, &bo).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_larger_than_the_free_space_is_refused_before_accept() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        // 8 TiB: more than any browser lets a page store on this disk, in no disk space.
        let huge = sparse_file(h.files_dir(), "whole-disk.img", 8 << 40)?;
        ana.send("bo", &[&huge]).await?;
        let offer = bo.incoming_offer().await?;
        ensure!(
            offer.contains("This needs 8.8 TB, but this browser can store only"),
            "the offer should say it will not fit, but reads {offer:?}"
        );
        ensure!(
            !bo.can_accept().await?,
            "\"Accept\" should not be pressable for an offer that does not fit"
        );
        bo.decline().await?;
        ana.wait_status(&huge.name, "Declined", |status| status == "Declined")
            .await?;
        send_marker_and_expect_only_it(h, &ana, &bo).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_file_offer_accepted_as_a_whole_delivers_all_three() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let files = [
            random_file(h.files_dir(), "first.bin", 3 << 20, 6).await?,
            random_file(h.files_dir(), "second file.txt", (1 << 20) + 17, 7).await?,
            random_file(h.files_dir(), "third.dat", 200_000, 8).await?,
        ];
        ana.send("bo", &files.iter().collect::<Vec<_>>()).await?;
        let offer = bo.incoming_offer().await?;
        for file in &files {
            ensure!(
                offer.contains(&file.name),
                "the offer should list {:?}, but reads {offer:?}",
                file.name
            );
        }
        bo.accept().await?;
        for file in &files {
            expect_received(&ana, &bo, file).await?;
        }
        expect_downloads(&bo, &files).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_from_either_side_stops_both_and_saves_nothing() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let by_sender =
            random_file(h.files_dir(), "cancelled-by-ana.bin", LONG_TRANSFER, 9).await?;
        let by_receiver =
            random_file(h.files_dir(), "cancelled-by-bo.bin", LONG_TRANSFER, 10).await?;
        for (file, canceller) in [(&by_sender, &ana), (&by_receiver, &bo)] {
            start_transfer(&ana, &bo, file).await?;
            canceller.cancel(&file.name).await?;
            for user in [&ana, &bo] {
                user.wait_status(&file.name, "Cancelled", |status| status == "Cancelled")
                    .await?;
            }
        }
        send_marker_and_expect_only_it(h, &ana, &bo).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_sees_the_transfer_paused_within_5_s_when_the_receivers_tab_closes() -> Result<()>
{
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let file = random_file(h.files_dir(), "abandoned.bin", LONG_TRANSFER, 11).await?;
        start_transfer(&ana, &bo, &file).await?;

        let closed = Instant::now();
        bo.close_tab().await?;
        // The wait itself allows much longer, so that a slow pause is reported with the time
        // it took rather than as a timeout.
        let status = ana
            .wait_status_within(
                &file.name,
                "\"Paused — waiting for bo\"",
                Duration::from_secs(60),
                |s| s == "Paused — waiting for bo",
            )
            .await?;
        let took = closed.elapsed();
        ensure!(
            took < VANISHED_PEER_DEADLINE,
            "Ana saw {status:?} {took:?} after Bo's tab closed; the limit is \
             {VANISHED_PEER_DEADLINE:?}"
        );
        eprintln!("Ana saw {status:?} {took:?} after Bo's tab closed");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_survives_a_signaling_server_restart() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let file =
            random_file(h.files_dir(), "through-the-outage.bin", OUTAGE_TRANSFER, 12).await?;
        start_transfer(&ana, &bo, &file).await?;

        h.server().stop().await?;
        for user in [&ana, &bo] {
            user.wait_connection_banner().await?;
        }
        // The point is that the bytes keep flowing while the server is away, so the outage must
        // really have started mid-transfer.
        for user in [&ana, &bo] {
            let status = user.status(&file.name).await?;
            ensure!(
                status
                    .as_deref()
                    .is_some_and(|status| !ferry_e2e::is_final(status)),
                "the transfer was no longer running when both banners showed: {status:?}"
            );
        }
        h.server().restart().await?;

        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;
        for user in [&ana, &bo] {
            user.wait_no_connection_banner().await?;
        }
        expect_received(&ana, &bo, &file).await
    })
    .await
}

/// Ana offers `file` to Bo, Bo accepts, and both see its bytes moving.
pub(crate) async fn start_transfer(ana: &User, bo: &User, file: &SourceFile) -> Result<()> {
    ana.send("bo", &[file]).await?;
    bo.incoming_offer().await?;
    bo.accept().await?;
    ana.wait_progress_moving(&file.name).await?;
    bo.wait_progress_moving(&file.name).await
}

/// Both sides show `file` as complete, and Bo's browser saved exactly its bytes.
pub(crate) async fn expect_received(ana: &User, bo: &User, file: &SourceFile) -> Result<()> {
    for user in [ana, bo] {
        user.wait_status(&file.name, "Complete", |status| status == "Complete")
            .await?;
    }
    let saved = finished_download(bo.downloads(), &file.name).await?;
    file.check_received(&saved).await
}

/// Bo's downloads folder holds exactly `files`, by name: nothing else, nothing partial.
pub(crate) async fn expect_downloads(bo: &User, files: &[SourceFile]) -> Result<()> {
    let mut expected: Vec<String> = files.iter().map(|file| file.name.clone()).collect();
    expected.sort();
    let saved = listing(bo.downloads())?;
    ensure!(
        saved == expected,
        "Bo's downloads should be {expected:?}, but are {saved:?}"
    );
    Ok(())
}

/// Proves that nothing from earlier in the scenario was saved, without sleeping: a marker
/// file sent afterwards arrives, and Bo's downloads folder then holds the marker alone. A
/// download the app started for an earlier file would have been handed to the browser first.
async fn send_marker_and_expect_only_it(h: &Harness, ana: &User, bo: &User) -> Result<()> {
    let marker = random_file(h.files_dir(), "marker.txt", 1000, 99).await?;
    ana.send("bo", &[&marker]).await?;
    bo.incoming_offer().await?;
    bo.accept().await?;
    expect_received(ana, bo, &marker)
        .await
        .context("sending a marker file afterwards")?;
    expect_downloads(bo, &[marker]).await
}
