//! Transfers that go on after an interruption: both sides keep what arrived, and once the
//! browsers reach each other again only the rest is sent.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use ferry_e2e::webrtc::{
    after_break, break_connections, bytes_sent, deafen, hold_sending_after, largest_message,
    page_clock, release_sending, resumed_after_break, resumed_at, watch_webrtc,
};
use ferry_e2e::{Harness, Kind, User, random_file, run};

use crate::{expect_received, start_transfer};

/// Large enough that breaking it at 40 % leaves many seconds of sending.
const RESUMED_TRANSFER: u64 = 128 << 20;

/// The sender is held still once it has sent this share of the file more
/// ([`hold_sending_after`]), so the interruption at 40 % always comes before the end,
/// whatever this machine's speed and however long the browsers take to carry out the test's
/// commands. Usually the interruption comes first, while bytes are in flight.
fn hold_point(len: u64) -> u64 {
    len * 4 / 5
}

/// What may go again beyond the bytes Bo lacked: chunk headers and control messages, which
/// come to a few kilobytes per mebibyte block.
const OVERHEAD: u64 = 1 << 20;

/// The most the sender runs ahead of what the receiver stored: its window.
const IN_FLIGHT: u64 = 16 << 20;

/// What a receiver's page that goes away (a reload, a closed tab) may have stored without
/// having recorded it yet: the app keeps its record at most a quarter of a second behind,
/// and once in CI a closing Firefox tab did not get to write it last (12 MB behind). Those
/// blocks go again. A quarter second at the fastest this machine moves bytes (about
/// 35 MB/s) is under 9 MB; this is that with room.
const RECORD_LAG: u64 = 16 << 20;

/// Both browsers stay online through a broken connection, so going on takes only a new
/// connection's set-up, a fraction of a second on one machine. A resumption slower than this
/// waited for some timeout; the scenario prints both pages and their consoles to say which.
const SLOW_RESUMPTION: Duration = Duration::from_secs(5);

/// The longest a resumption may take: an attempt that gets no answer is given up after the
/// app's connect deadline (20 s), and the next one starts a second or so later. Some breaks
/// have needed that second attempt (20.9 s): once in about ten runs of the full suite, one
/// from Firefox to Chromium did, while 45 such breaks outside the suite never did. Its cause
/// is not known yet.
const RESUME_DEADLINE: Duration = Duration::from_secs(30);

/// The chunk every WebRTC implementation takes, which Ferry falls back to when the
/// connection does not say how large a message may be; two Chromiums take 256 KiB.
const FALLBACK_CHUNK: u64 = 16 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_mid_transfer_resumes_by_itself_without_resending_what_arrived()
-> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        watch_webrtc(&ana).await?;
        let report = resumes_after_a_break(h, &ana, &bo, "interrupted.bin", 14).await?;
        eprintln!("{report}");
        Ok(())
    })
    .await
}

/// Ana sends Bo a file and, at about 40 %, every peer connection of her page closes, as when
/// her network drops; the transfer must go on by itself, arrive byte-identical, and send
/// again only what Bo lacked. Ana's page must be watched ([`watch_webrtc`]) from before it
/// made its first connection. Returns what it measured.
pub(crate) async fn resumes_after_a_break(
    h: &Harness,
    ana: &User,
    bo: &User,
    name: &str,
    seed: u64,
) -> Result<String> {
    let file = random_file(h.files_dir(), name, RESUMED_TRANSFER, seed).await?;
    hold_sending_after(ana, hold_point(file.len)).await?;
    start_transfer(ana, bo, &file).await?;
    let held = bo
        .wait_progress_at_least(&file.name, file.len * 2 / 5)
        .await?;
    // The break lifts the hold.
    let sent_before = break_connections(ana).await?;
    let broke = Instant::now();
    expect_received(ana, bo, &file).await?;
    let took = broke.elapsed();
    let resent = bytes_sent(ana).await? - sent_before;
    let missing = file.len - held;
    let resumed = resumed_after_break(ana).await?;
    let went = after_break(ana).await?;
    ensure!(
        resent <= missing + OVERHEAD,
        "after the break Ana sent {resent} bytes where Bo lacked at most {missing}: verified \
         blocks went again (resumed {resumed:?} after the break; {went})"
    );
    let Some(resumed) = resumed else {
        bail!("Ana's page never marked the transfer resumed");
    };
    if resumed > SLOW_RESUMPTION {
        eprintln!(
            "SLOW: Ana's transfer resumed {resumed:?} after the break ({went}); what the pages \
             show and logged:"
        );
        h.show_pages().await;
    }
    ensure!(
        resumed <= RESUME_DEADLINE,
        "Ana's transfer resumed {resumed:?} after the break; the limit is {RESUME_DEADLINE:?} \
         ({went})"
    );
    Ok(format!(
        "broken at {held} of {} bytes; resumed {resumed:?} after the break; {resent} bytes \
         sent after it for {missing} missing ({went}); complete {took:?} after it",
        file.len
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receivers_reload_pauses_the_transfer_and_it_resumes_from_the_verified_blocks()
-> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let file = random_file(h.files_dir(), "reloaded.bin", RESUMED_TRANSFER, 15).await?;
        watch_webrtc(&ana).await?;
        hold_sending_after(&ana, hold_point(file.len)).await?;
        start_transfer(&ana, &bo, &file).await?;
        let held = bo
            .wait_progress_at_least(&file.name, file.len * 2 / 5)
            .await?;
        let sent_before = bytes_sent(&ana).await?;
        let reloaded = Instant::now();
        let reloaded_on_anas_clock = page_clock(&ana).await?;
        bo.reload().await?;
        release_sending(&ana).await?;
        // Bo's page comes back joined as bo, showing the transfer paused, until Ana's goes on.
        ana.wait_online_users(&["bo"]).await?;
        expect_received(&ana, &bo, &file).await?;
        let took = reloaded.elapsed();
        let resent = bytes_sent(&ana).await? - sent_before;
        let missing = file.len - held;
        let resumed = resumed_at(&ana)
            .await?
            .map(|at| std::time::Duration::from_secs_f64((at - reloaded_on_anas_clock) / 1000.0));
        ensure!(
            resumed.is_some(),
            "Ana's page never marked the transfer resumed"
        );
        // Until Ana heard that Bo left, she kept sending up to a window ahead of Bo's disk;
        // what he stored after his record was last kept goes again too.
        ensure!(
            resent <= missing + IN_FLIGHT + RECORD_LAG + OVERHEAD,
            "after the reload Ana sent {resent} bytes where Bo lacked at most {missing}, \
             {IN_FLIGHT} were in flight and {RECORD_LAG} may have been unrecorded: verified \
             blocks went again"
        );
        eprintln!(
            "reloaded at {held} of {} bytes; resumed {resumed:?} after the reload; {resent} \
             bytes sent after it for {missing} missing; complete {took:?} after it",
            file.len
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_back_in_a_new_chromium_tab_takes_the_transfer_up_in_one_tab_only() -> Result<()>
{
    back_in_a_new_tab(Kind::Chromium, 18).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_back_in_a_new_firefox_tab_takes_the_transfer_up_in_one_tab_only() -> Result<()>
{
    back_in_a_new_tab(Kind::Firefox, 19).await
}

/// Bo, in a browser of `kind`, closes his tab at about 40 %: Ana's row says it waits for him,
/// and no longer how its bytes travelled. He opens Ferry again in two new tabs at once:
/// exactly one takes the transfer up, saying before he joins that it waits for him there, and
/// the other says another tab holds it. He joins in that one, and the transfer goes on from
/// what he held.
async fn back_in_a_new_tab(kind: Kind, seed: u64) -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo_in(Kind::Chromium, kind).await?;
        let file = random_file(h.files_dir(), "new-tab.bin", RESUMED_TRANSFER, seed).await?;
        watch_webrtc(&ana).await?;
        hold_sending_after(&ana, hold_point(file.len)).await?;
        start_transfer(&ana, &bo, &file).await?;
        let held = bo
            .wait_progress_at_least(&file.name, file.len * 2 / 5)
            .await?;
        let sent_before = bytes_sent(&ana).await?;
        bo.close_tab().await?;
        release_sending(&ana).await?;
        let waiting = "Paused — waiting for bo";
        ana.wait_status(&file.name, waiting, |status| status == waiting)
            .await?;
        let route = ana.route(&file.name).await?;
        ensure!(route.is_none(), "Ana's paused row still says {route:?}");

        let url = h.server().url();
        let first = bo.open_again(&url).await?;
        let second = bo.open_new_tab(&url).await?;
        let mut takers = Vec::new();
        for tab in [first, second] {
            bo.switch_to_tab(tab.clone()).await?;
            if bo.takes_up_or_defers(&file.name, "ana").await? {
                takers.push(tab);
            }
        }
        let [taker] = takers.as_slice() else {
            bail!("{} of Bo's two new tabs took the transfer up", takers.len());
        };
        bo.switch_to_tab(taker.clone()).await?;
        bo.join("bo").await?;
        expect_received(&ana, &bo, &file).await?;
        let resent = bytes_sent(&ana).await? - sent_before;
        let missing = file.len - held;
        // Until Ana heard that Bo left, she kept sending up to a window ahead of Bo's disk;
        // what he stored after his record was last kept goes again too.
        ensure!(
            resent <= missing + IN_FLIGHT + RECORD_LAG + OVERHEAD,
            "after Bo's tab closed Ana sent {resent} bytes where Bo lacked at most {missing}, \
             {IN_FLIGHT} were in flight and {RECORD_LAG} may have been unrecorded: verified \
             blocks went again"
        );
        eprintln!(
            "{kind}: closed at {held} of {} bytes; {resent} bytes sent after it for {missing} \
             missing",
            file.len
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_reload_resumes_once_the_file_is_picked_again_and_refuses_another() -> Result<()>
{
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let file = random_file(h.files_dir(), "picked-again.bin", RESUMED_TRANSFER, 16).await?;
        // Another file of the same name, in another folder: not the one that was sent.
        let elsewhere = h.files_dir().join("elsewhere");
        std::fs::create_dir_all(&elsewhere)?;
        let impostor = random_file(&elsewhere, "picked-again.bin", 1 << 20, 17).await?;
        // The reload ends the hold with the page.
        watch_webrtc(&ana).await?;
        hold_sending_after(&ana, hold_point(file.len)).await?;
        start_transfer(&ana, &bo, &file).await?;
        let held = bo
            .wait_progress_at_least(&file.name, file.len * 2 / 5)
            .await?;
        let reloaded = Instant::now();
        ana.reload().await?;
        let asking = format!("Paused — pick {} again to resume", file.name);
        ana.wait_status(&file.name, &asking, |status| status == asking)
            .await?;
        bo.wait_status(&file.name, "Paused — waiting for ana", |status| {
            status == "Paused — waiting for ana"
        })
        .await?;
        let pick = format!("Pick {} again", file.name);
        ana.give_files(&pick, &[&impostor]).await?;
        let refused = format!(
            "Paused — that is not the {} that was being sent; pick it again to resume",
            file.name
        );
        ana.wait_status(&file.name, &refused, |status| status == refused)
            .await?;
        // Everything sent from here on is counted: it is what the resumption costs.
        watch_webrtc(&ana).await?;
        ana.give_files(&pick, &[&file]).await?;
        expect_received(&ana, &bo, &file).await?;
        let took = reloaded.elapsed();
        let sent = bytes_sent(&ana).await?;
        let largest = largest_message(&ana).await?;
        ensure!(
            largest > FALLBACK_CHUNK,
            "after the reload Ana sent no message over {largest} bytes: she cut the file for a \
             connection that had not said how large a message may be"
        );
        let missing = file.len - held;
        ensure!(
            sent <= missing + IN_FLIGHT + OVERHEAD,
            "after the reload Ana sent {sent} bytes where Bo lacked at most {missing}: \
             verified blocks went again"
        );
        eprintln!(
            "sender reloaded at {held} of {} bytes; {sent} bytes sent after it for {missing} \
             missing; complete {took:?} after the reload",
            file.len
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_reloaded_after_every_byte_arrived_hears_so_and_asks_for_no_file() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        // Smaller than the sender's window, so it all goes without a receipt.
        let file = random_file(h.files_dir(), "all-there.bin", 4 << 20, 18).await?;
        // Ana never hears Bo's receipts, nor his closing the transfer's channel once it is
        // done: as far as her page knows, the file is still on its way when she reloads it.
        watch_webrtc(&ana).await?;
        deafen(&ana).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        bo.wait_status(&file.name, "Complete", |status| status == "Complete")
            .await?;
        let before = ana.status(&file.name).await?;
        ensure!(
            before.as_deref() != Some("Complete"),
            "Ana heard the file arrived, though she was deaf to Bo's receipts"
        );
        ana.reload().await?;
        // No file is picked again: Ana's page asks Bo how far the transfer got.
        expect_received(&ana, &bo, &file).await?;
        eprintln!("before the reload Ana's row said {before:?}; after it, Complete");
        Ok(())
    })
    .await
}
