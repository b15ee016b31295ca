//! Floods that used to work: signals poured at a reader (which cut off the reader), and ghosts
//! (sessions whose connection was dropped without a goodbye) made by the thousand from one
//! address (each listed to everyone, every welcome growing). Now the flooder is refused and
//! cut off, the reader stays, the ghosts are capped per address and unlisted after a short
//! grace, and a welcome stays small.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ferry_protocol::{ErrorCode, PeerId, ServerMessage, SignalPayload};
use ferry_signaling::{Config, Limits};
use tokio::time::Instant;

use crate::support::{Client, TestServer, join, offer};

const ANOTHER_MACHINE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Sends `to` a 60 kB signal about 45 times a second (under the message rate) until the
/// server closes the connection, within `patience`; returns the errors it got first.
async fn flood(
    mut attacker: Client,
    to: PeerId,
    patience: Duration,
) -> anyhow::Result<Vec<ErrorCode>> {
    let big = offer(&"x".repeat(60_000));
    let until = Instant::now() + patience;
    let mut errors = Vec::new();
    loop {
        anyhow::ensure!(Instant::now() < until, "the attacker was never cut off");
        if attacker.signal(&to, big.clone()).await.is_err() {
            return Ok(errors);
        }
        // What the server said meanwhile: refusals, and in the end the close.
        loop {
            match tokio::time::timeout(Duration::from_millis(22), attacker.next_frame()).await {
                Err(_) => break,
                Ok(Ok(Some(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                    if let ServerMessage::Error { code, .. } = serde_json::from_str(&text)? {
                        errors.push(code);
                    }
                }
                Ok(Ok(Some(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                    let code = frame.map(|frame| u16::from(frame.code));
                    anyhow::ensure!(code == Some(1008), "closed with {code:?}");
                    return Ok(errors);
                }
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None) | Err(_)) => return Ok(errors),
            }
        }
    }
}

/// Reads what `reader` is sent at about `bytes_per_sec`, until `stop`; returns whether it was
/// still open then, and how many signals it read.
async fn read_slowly(
    mut reader: Client,
    bytes_per_sec: f64,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<(Client, usize)> {
    let mut signals = 0;
    let reading = async {
        loop {
            let frame = reader.next_frame().await?;
            let Some(tokio_tungstenite::tungstenite::Message::Text(text)) = frame else {
                anyhow::bail!("the reader was cut off: {frame:?}");
            };
            if text.contains("\"type\":\"signal\"") {
                signals += 1;
            }
            tokio::time::sleep(Duration::from_secs_f64(text.len() as f64 / bytes_per_sec)).await;
        }
    };
    tokio::select! {
        read = reading => read.map(|()| (reader, signals)),
        _ = stop => Ok((reader, signals)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_floods_at_a_reader_cut_off_the_flooders_and_leave_the_reader_joined()
-> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (bo, bo_welcome) = Client::join(&server, "bo").await?;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    // Bo reads at 2 MB/s, slower than one flooder sends.
    let reader = tokio::spawn(read_slowly(bo, 2e6, stopped));

    // One flooder, then eight at once from one address.
    let (one, _) = Client::join(&server, "mallory").await?;
    let errors = flood(one, bo_welcome.id.clone(), Duration::from_secs(20)).await?;
    assert!(
        errors.iter().all(|code| *code == ErrorCode::PeerBusy),
        "{errors:?}"
    );
    assert!(!errors.is_empty());
    let mut floods = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (attacker, _) = Client::join(&server, &format!("mallory{i}")).await?;
        floods.spawn(flood(
            attacker,
            bo_welcome.id.clone(),
            Duration::from_secs(20),
        ));
    }
    while let Some(flooded) = floods.join_next().await {
        flooded??;
    }

    // Bo was never cut off, and hears from a peer as before.
    let _ = stop.send(());
    let (mut bo, flooded_signals) = reader.await??;
    assert!(flooded_signals > 0);
    let (mut cy, _) = Client::join(&server, "cy").await?;
    cy.signal(&bo_welcome.id, offer("hello")).await?;
    loop {
        match bo.recv().await? {
            ServerMessage::Signal { from, payload, .. } if from == cy.id() => {
                assert_eq!(payload, offer("hello"));
                break;
            }
            ServerMessage::Signal { .. } | ServerMessage::UsersChanged { .. } => {}
            other => anyhow::bail!("bo got {other:?}"),
        }
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_reader_at_normal_speed_gets_a_whole_striped_negotiation() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    // Four connections' offers and candidates at once, as a striped transfer starts.
    let mut sent = Vec::new();
    for lane in 0..4 {
        sent.push(offer(&format!("{lane}{}", "v=0 ".repeat(2_000))));
        for candidate in 0..20 {
            sent.push(SignalPayload::IceCandidate {
                candidate: format!(
                    "candidate:{candidate} 1 udp 2122260223 192.0.2.{lane} {} typ host",
                    50_000 + candidate
                ),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            });
        }
    }
    for payload in &sent {
        ana.signal(&bo_welcome.id, payload.clone()).await?;
    }
    for payload in &sent {
        match bo.recv().await? {
            ServerMessage::Signal { payload: got, .. } => assert_eq!(&got, payload),
            other => anyhow::bail!("bo got {other:?}"),
        }
    }
    // Nothing was refused: the next thing ana hears is bo's answer.
    bo.signal(&ana.id(), offer("answer")).await?;
    match ana.recv().await? {
        ServerMessage::Signal { payload, .. } => assert_eq!(payload, offer("answer")),
        other => anyhow::bail!("ana got {other:?}"),
    }
    server.stop().await?;
    Ok(())
}

/// The most bytes a welcome may have after the ghost flood below: the few live users'.
const SMALL_WELCOME: usize = 2_000;

#[tokio::test]
async fn a_ghost_flood_from_one_address_is_capped_and_a_welcome_stays_small() -> anyhow::Result<()>
{
    let cap = 16;
    let grace = Duration::from_millis(300);
    let server = TestServer::start(Config {
        limits: Limits {
            max_sessions_per_ip: cap,
            linger_grace: grace,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    // Join and drop the connection without a goodbye, again and again.
    let mut ghosts = 0;
    let mut refused = 0;
    for i in 0..(cap * 3) {
        let mut ghost = Client::connect(&server).await?;
        ghost.send(&join(&format!("ghost{i}"), None)).await?;
        match ghost.recv().await? {
            ServerMessage::Welcome { .. } => ghosts += 1,
            ServerMessage::Error {
                code: ErrorCode::TooManySessions,
                ..
            } => refused += 1,
            other => anyhow::bail!("ghost{i} got {other:?}"),
        }
        ghost.drop_connection();
    }
    assert_eq!(ghosts, cap);
    assert_eq!(refused, cap * 2);

    // Someone from another address is let in, and once the grace is over, the ghosts are
    // not in their welcome.
    tokio::time::sleep(grace * 3).await;
    let mut newcomer = Client::connect_from(&server, ANOTHER_MACHINE).await?;
    newcomer.send(&join("newcomer", None)).await?;
    let Some(tokio_tungstenite::tungstenite::Message::Text(text)) = newcomer.next_frame().await?
    else {
        anyhow::bail!("no welcome");
    };
    assert!(
        text.len() < SMALL_WELCOME,
        "a welcome of {} bytes: {text}",
        text.len()
    );
    assert!(!text.contains("ghost"), "{text}");
    server.stop().await?;
    Ok(())
}
