//! Between two machines: HTTPS with Ferry's own certificate on an address that is not
//! loopback (a secure context, so files go through the private file system), a TURN relay
//! with short-lived credentials that carries every byte, or refuses and says so, and a
//! wide-area link over which a transfer stripes itself over several connections.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use ferry_e2e::wan::Link;
use ferry_e2e::{Harness, PRIVATE_IP, Relay, Setup, random_file, run_with};
use ferry_signaling::{IceConfig, TurnRest, TurnSecret};

use crate::expect_received;

/// The size the issue asks for: big enough that a memory-only receiver would show it needs
/// the private file system, small enough for a relayed run to stay short.
const SIXTY_FOUR_MIB: u64 = 64 << 20;

/// The secret the relay checks credentials with.
const SECRET: &str = "ferry-e2e-relay-secret";

/// Within this much of pressing Send, a sender whose relay refuses Ferry's credentials must
/// see why.
const REFUSED_RELAY_DEADLINE: Duration = Duration::from_secs(30);

/// A server that makes every browser use `relay` with credentials made from `secret`.
fn relayed(relay: &Relay, secret: &str) -> Setup {
    Setup {
        ice: IceConfig {
            fixed: Vec::new(),
            turn: Some(TurnRest {
                urls: vec![relay.url()],
                secret: TurnSecret::new(secret),
                ttl: Duration::from_secs(3600),
            }),
            relay_only: true,
        },
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_on_a_private_address_is_a_secure_context_and_saves_through_private_storage()
-> Result<()> {
    let setup = Setup {
        ip: PRIVATE_IP.into(),
        self_signed: true,
        ..Setup::default()
    };
    run_with(setup, async |h: &Harness| {
        let url = h.server().url();
        ensure!(url.starts_with("https://10.77.0.1:"), "served at {url}");
        let (ana, bo) = h.ana_and_bo().await?;
        for user in [&ana, &bo] {
            ensure!(
                user.is_secure_context().await?,
                "{url} is not a secure context"
            );
        }
        let file = random_file(h.files_dir(), "over-https.bin", SIXTY_FOUR_MIB, 21).await?;
        ana.send("bo", &[&file]).await?;
        let offer = bo.incoming_offer().await?;
        // Without the private file system the offer would say files stay in memory.
        ensure!(
            !offer.contains("in memory"),
            "the offer says Bo can only keep files in memory: {offer:?}"
        );
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_server_carries_every_byte_through_the_relay_and_says_so() -> Result<()> {
    let relay = Relay::start(PRIVATE_IP, SECRET).await?;
    run_with(relayed(&relay, SECRET), async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let file = random_file(h.files_dir(), "relayed.bin", SIXTY_FOUR_MIB, 22).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await?;
        for user in [&ana, &bo] {
            let route = user.route(&file.name).await?;
            ensure!(
                route.as_deref() == Some("Relayed"),
                "the row of {} says {route:?}, not \"Relayed\"",
                file.name
            );
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_the_credentials_fails_the_offer_saying_so() -> Result<()> {
    let relay = Relay::start(PRIVATE_IP, SECRET).await?;
    run_with(
        relayed(&relay, "not-the-relay's-secret"),
        async |h: &Harness| {
            // Bo stays online: the only thing in the way is the relay.
            let (ana, _bo) = h.ana_and_bo().await?;
            let file = random_file(h.files_dir(), "refused.bin", 1000, 23).await?;
            let sent = Instant::now();
            ana.send("bo", &[&file]).await?;
            let expected = "Failed: no network path to bo — the relay refused Ferry's credentials";
            let status = ana
                .wait_status_within(&file.name, expected, Duration::from_secs(90), |status| {
                    status.starts_with("Failed: ")
                })
                .await?;
            let took = sent.elapsed();
            ensure!(status == expected, "the row says {status:?}");
            ensure!(
                took < REFUSED_RELAY_DEADLINE,
                "the refusal showed {took:?} after Send; the limit is {REFUSED_RELAY_DEADLINE:?}"
            );
            eprintln!("Ana saw {status:?} {took:?} after Send");
            Ok(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_wide_area_link_a_transfer_stripes_over_several_connections() -> Result<()> {
    let setup = Setup {
        wan: Some(Link {
            rtt: Duration::from_millis(40),
            ..Link::default()
        }),
        ..Setup::default()
    };
    run_with(setup, async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        // Large enough to start on several connections, and at 40 ms long enough to outlast
        // a doubling of them.
        let file = random_file(h.files_dir(), "far-away.bin", 24 << 20, 24).await?;
        ana.send("bo", &[&file]).await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        expect_received(&ana, &bo, &file).await?;
        for user in [&ana, &bo] {
            let connections = user.connections(&file.name).await?;
            ensure!(
                connections.is_some_and(|count| count >= 2),
                "the row says the bytes went over {connections:?} connections"
            );
        }
        Ok(())
    })
    .await
}
