//! Knowing who is on the other end: Ana (Chromium) and Bo (Firefox) verify each other with a
//! code derived from both devices' keys, stay verified across a reload, and a fresh profile
//! under Bo's nick is warned of; texts, and offers accepted without asking from a verified
//! person. A server in the middle that swaps the keys cannot make the two codes agree.

use std::time::Instant;

use anyhow::{Result, ensure};
use ferry_e2e::{Harness, Kind, Mallory, default_static_dir, random_file, run};

use crate::expect_received;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_people_stay_verified_and_another_device_under_their_nick_is_warned_of()
-> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo_in(Kind::Chromium, Kind::Firefox).await?;

        // Both screens show the same code; both confirm; both show Verified.
        let started = Instant::now();
        ana.verify("bo").await?;
        let (ana_code, bo_code) =
            tokio::try_join!(ana.verification_code("bo"), bo.verification_code("ana"))?;
        eprintln!(
            "\"Verify\" to the code on both screens: {} ms",
            started.elapsed().as_millis()
        );
        ensure!(
            ana_code == bo_code,
            "the codes differ: Ana reads {ana_code:?}, Bo reads {bo_code:?}"
        );
        ana.press_in_verification("bo", "They match").await?;
        bo.press_in_verification("ana", "They match").await?;
        ana.wait_verification_says("bo", "bo is verified on this device")
            .await?;
        bo.wait_verification_says("ana", "ana is verified on this device")
            .await?;
        ana.press_in_verification("bo", "Close").await?;
        bo.press_in_verification("ana", "Close").await?;
        ana.wait_mark("bo", "Verified").await?;
        bo.wait_mark("ana", "Verified").await?;

        // A text goes straight to Bo; its link is shown as text.
        let text = "The door code is 4711 — see https://example.com/door";
        ana.send_text("bo", text).await?;
        bo.wait_text_from("ana", text).await?;

        // Bo accepts Ana's offers without being asked: the file lands with no dialog.
        bo.accept_automatically_from("ana").await?;
        let file = random_file(h.files_dir(), "accepted-by-itself.bin", 300_000, 71).await?;
        ana.send("bo", &[&file]).await?;
        expect_received(&ana, &bo, &file).await?;

        // After a reload Ana still sees Bo as verified, with no code asked.
        ana.reload().await?;
        ana.wait_online_users(&["bo"]).await?;
        ana.wait_mark("bo", "Verified").await?;
        ensure!(
            !ana.warns_of_other_device("bo").await?,
            "Ana is warned about Bo's device after a reload"
        );

        // Bo's profile replaced by a fresh one is another device: Ana's row and her offer
        // dialog say so before any Accept.
        bo.close_tab().await?;
        ana.wait_online_users(&[]).await?;
        let new_bo = h.open_user_in("Bo's fresh profile", Kind::Firefox).await?;
        new_bo.join("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        ana.wait_mark("bo", "Other device").await?;
        ana.select("bo").await?;
        ensure!(
            ana.warns_of_other_device("bo").await?,
            "Ana's page does not say that bo is not on the device she verified"
        );
        let probe = random_file(h.files_dir(), "from-the-new-device.txt", 100, 72).await?;
        new_bo.send("ana", &[&probe]).await?;
        let offer = ana.incoming_offer().await?;
        ensure!(
            offer.contains("bo is not on the device you verified"),
            "Ana's offer dialog does not warn of bo's new device: {offer:?}"
        );
        ana.decline().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_the_middle_cannot_make_the_two_codes_agree() -> Result<()> {
    run(async |h: &Harness| {
        // Ana and Bo use a hostile server: a proxy that hands the signals between them to
        // Mallory, a third page that answers each of them with its own connection.
        let mallory =
            Mallory::start(&h.server().url(), default_static_dir(), &["ana", "bo"]).await?;
        let page = h
            .open_user_at("Mallory", Kind::Chromium, &mallory.url())
            .await?;
        mallory.run_in(&page).await?;
        let ana = h
            .open_user_at("Ana", Kind::Chromium, &mallory.url())
            .await?;
        let bo = h.open_user_at("Bo", Kind::Firefox, &mallory.url()).await?;
        ana.join("ana").await?;
        bo.join("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;

        // Everything seems to work: a text goes from Ana to Bo, through Mallory.
        let text = "hello, is this really you?";
        ana.send_text("bo", text).await?;
        bo.wait_text_from("ana", text).await?;
        let held = Mallory::connections(&page).await?;
        ensure!(
            held >= 2,
            "Mallory holds {held} connections, not one to each"
        );

        // But the codes differ, and saying so verifies nobody.
        ana.verify("bo").await?;
        let (ana_code, bo_code) =
            tokio::try_join!(ana.verification_code("bo"), bo.verification_code("ana"))?;
        ensure!(
            ana_code != bo_code,
            "a man in the middle got the same code on both screens: {ana_code:?}"
        );
        ana.press_in_verification("bo", "They don't match").await?;
        ana.wait_verification_says("bo", "The codes differ").await?;
        bo.wait_verification_says("ana", "The codes differ").await?;
        bo.press_in_verification("ana", "Close").await?;
        let row = bo.online_user_text("ana").await?.unwrap_or_default();
        ensure!(
            !row.contains("Verified"),
            "Bo's page shows ana as verified after the codes differed: {row:?}"
        );
        Ok(())
    })
    .await
}
