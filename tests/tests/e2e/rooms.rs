//! Private rooms: people meet the person they mean by a link or a pairing code, see only each
//! other there, and send files there as anywhere; someone in the lobby sees none of it.

use anyhow::{Result, ensure};
use ferry_e2e::{Harness, Kind, Setup, random_file, run, run_with};
use ferry_protocol::LobbyScope;

use crate::{expect_downloads, expect_received};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_link_brings_bo_to_ana_alone_and_a_reload_keeps_ana_in_the_room() -> Result<()> {
    run(async |h: &Harness| {
        let ana = h.open_user_in("Ana", Kind::Chromium).await?;
        let cy = h.open_user_in("Cy", Kind::Chromium).await?;
        ana.join("ana").await?;
        cy.join("cy").await?;
        ana.wait_online_users(&["cy"]).await?;

        let link = ana.new_room().await?;
        ensure!(
            link.starts_with(&h.server().url()) && link.contains("/#room="),
            "the room's link should be the page's address with the room in its fragment: {link}"
        );
        ana.wait_online_users(&[]).await?;
        cy.wait_online_users(&[]).await?;
        ensure!(
            ana.shows_qr_code().await?,
            "the room shows no QR code of its link"
        );

        let bo = h.open_user_at("Bo", Kind::Firefox, &link).await?;
        bo.join_room("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;
        ensure!(
            bo.room_link().await? == link,
            "Bo's page shows another link"
        );

        let file = random_file(h.files_dir(), "in-the-room.bin", 3 << 20, 61).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await?;
        expect_downloads(&bo, &[file]).await?;
        // Texts work in a room as in the lobby.
        bo.send_text("ana", "got it, thanks").await?;
        ana.wait_text_from("bo", "got it, thanks").await?;

        // A reload comes back to the room under the same nick, and the lobby never saw it.
        ana.reload().await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;
        ensure!(
            ana.room_link().await? == link,
            "after a reload Ana is elsewhere"
        );
        cy.wait_online_users(&[]).await?;

        // Leaving the room is coming back to the lobby.
        bo.leave_room().await?;
        bo.wait_online_users(&["cy"]).await?;
        cy.wait_online_users(&["bo"]).await?;
        ana.wait_online_users(&[]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lobby_the_page_opens_on_making_a_room_and_a_broken_link_says_so() -> Result<()> {
    let setup = Setup {
        lobby: LobbyScope::Off,
        ..Setup::default()
    };
    run_with(setup, async |h: &Harness| {
        let broken = format!("{}#room=0123456789", h.server().url());
        let ana = h.open_user_at("Ana", Kind::Firefox, &broken).await?;
        let alert = ana.wait_alert().await?;
        ensure!(
            alert.starts_with("This room link is broken"),
            "a cut room link should say so, but the page says {alert:?}"
        );
        ana.open_again(&h.server().url()).await?;
        ana.wait_offered("Create a room").await?;
        ensure!(
            !ana.offers("Join").await? && !ana.offers("New private room").await?,
            "a server without a lobby should offer no way into one"
        );
        let link = ana.create_room("ana").await?;
        ensure!(
            !ana.offers("Leave room").await?,
            "there is no lobby to go back to"
        );
        let bo = h.open_user_at("Bo", Kind::Chromium, &link).await?;
        bo.join_room("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_typed_by_bo_pairs_him_with_ana_and_a_wrong_one_says_so() -> Result<()> {
    run(async |h: &Harness| {
        let ana = h.open_user_in("Ana", Kind::Firefox).await?;
        let bo = h.open_user_in("Bo", Kind::Chromium).await?;
        ana.join("ana").await?;
        let code = ana.pair_with_code().await?;
        ana.room_link().await?;

        let wrong = format!("{:06}", (code.parse::<u32>()? + 1) % 1_000_000);
        let refusal = bo.join_with_code_refused("bo", &wrong).await?;
        ensure!(
            refusal.starts_with("No room has that code"),
            "a wrong code should say so, but the page says {refusal:?}"
        );
        bo.join_with_code("bo", &format!("{} {}", &code[..3], &code[3..]))
            .await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;
        ensure!(
            bo.room_link().await? == ana.room_link().await?,
            "the code led Bo to another room"
        );

        let file = random_file(h.files_dir(), "paired.bin", 2 << 20, 62).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await?;
        expect_downloads(&bo, &[file]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_wrong_code_in_a_minute_says_too_many() -> Result<()> {
    run(async |h: &Harness| {
        let cy = h.open_user_in("Cy", Kind::Chromium).await?;
        for n in 0..10 {
            let refusal = cy.join_with_code_refused("cy", &format!("{n:06}")).await?;
            ensure!(
                refusal.starts_with("No room has that code"),
                "wrong code {n} should be wrong, but the page says {refusal:?}"
            );
        }
        let refusal = cy.join_with_code_refused("cy", "000010").await?;
        ensure!(
            refusal.starts_with("Too many wrong codes")
                && refusal.contains(" s before trying again"),
            "the eleventh wrong code should say too many and how long to wait, but the page says \
             {refusal:?}"
        );
        Ok(())
    })
    .await
}
