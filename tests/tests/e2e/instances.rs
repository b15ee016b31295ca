//! Two signaling instances on one Redis as one service, as behind a load balancer: people on
//! different instances see each other and send files, a room's link works through either, and
//! when one instance crashes its people vanish from the others' lists and come back through
//! the other; a page that joins while Redis is down says the service is restarting and gets in
//! by itself once Redis is back.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use ferry_e2e::{Harness, Kind, Setup, random_file, run_with};
use ferry_signaling::testing::RedisServer;

use crate::{expect_downloads, expect_received};

/// The longest anyone may stay listed after their instance crashed.
const GONE_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_are_one_service_and_outlive_one_crashing() -> Result<()> {
    let redis = RedisServer::start().await?;
    let setup = Setup {
        redis: Some(redis.url()),
        ..Setup::default()
    };
    run_with(setup, async |h: &Harness| {
        let b = h.server().another().await?;
        let ana = h.open_user_in("Ana", Kind::Chromium).await?;
        let bo = h.open_user_at("Bo", Kind::Firefox, &b.url()).await?;
        ana.join("ana").await?;
        bo.join("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;

        let file = random_file(h.files_dir(), "across-64MiB.bin", 64 << 20, 71).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await?;
        expect_downloads(&bo, &[file]).await?;

        // A room's link made through A works for a page that a balancer sent to B.
        let cy = h.open_user_in("Cy", Kind::Chromium).await?;
        let link = cy.join_new_room("cy").await?;
        let through_b = link.replace(&h.server().url(), &b.url());
        ensure!(through_b != link, "the room's link is not on A: {link}");
        let dee = h.open_user_at("Dee", Kind::Chromium, &through_b).await?;
        dee.join_room("dee").await?;
        cy.wait_online_users(&["dee"]).await?;
        dee.wait_online_users(&["cy"]).await?;
        bo.wait_online_users(&["ana"]).await?;

        // A crashes: its people vanish from the lists of those on B.
        let crashed = Instant::now();
        h.server().crash().await?;
        bo.wait_online_users(&[]).await?;
        dee.wait_online_users(&[]).await?;
        let gone_after = crashed.elapsed();
        ensure!(
            gone_after <= GONE_WITHIN,
            "Ana and Cy were listed {gone_after:?} after their instance crashed"
        );
        eprintln!("people on the crashed instance were gone from the lists after {gone_after:?}");

        // Ana's page, pointed at B, joins under her nick again.
        ana.open_again(&b.url()).await?;
        ana.join("ana").await?;
        bo.wait_online_users(&["ana"]).await?;
        ana.wait_online_users(&["bo"]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_joining_while_redis_is_down_says_so_and_gets_in_once_it_is_back() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let setup = Setup {
        redis: Some(redis.url()),
        ..Setup::default()
    };
    run_with(setup, async |h: &Harness| {
        redis.kill();
        let ana = h.open_user_in("Ana", Kind::Firefox).await?;
        ana.press_join("ana").await?;
        let said = ana.wait_banner("The service is restarting").await?;
        ensure!(said.contains("retrying"), "the banner reads {said:?}");
        redis.restart().await?;
        // Nobody presses anything again: the page tries by itself.
        ana.wait_joined("ana").await?;
        let bo = h.open_user_in("Bo", Kind::Chromium).await?;
        bo.join("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await
    })
    .await
}
