//! Joining, the user list, leaving, expiry and reclaiming a session with its token.

use std::time::Duration;

use ferry_protocol::{ClientMessage, ErrorCode, IceServer, ServerMessage, SessionToken};
use ferry_signaling::{Config, IceConfig};
use tokio::time::Instant;

use crate::support::{
    Client, TestServer, arrived, assert_signal, departed, join, offer, short_ttl, stranger,
};

/// A time-to-live short enough for expiry tests, long enough for heartbeats every
/// [`HEARTBEAT`] to keep a user online on a busy machine (a 400 ms one was not, with three
/// copies of this suite running at once on two cores).
const TTL: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_millis(100);

#[tokio::test]
async fn two_users_see_each_other() -> anyhow::Result<()> {
    let ice = IceServer {
        urls: vec!["turn:turn.example:3478".into()],
        username: Some("u".into()),
        credential: Some("c".into()),
    };
    let server = TestServer::start(Config {
        ice: IceConfig {
            fixed: vec![ice.clone()],
            ..IceConfig::default()
        },
        ..Config::default()
    })
    .await?;
    let (mut ana, ana_welcome) = Client::join(&server, "  Ana ").await?;
    assert_eq!(ana_welcome.nick, "Ana", "the nick is trimmed");
    assert!(ana_welcome.users.is_empty());
    assert_eq!(ana_welcome.heartbeat_secs, 30, "a quarter of the 120 s TTL");
    assert_eq!(ana_welcome.ice_servers, vec![ice]);
    assert!(!ana_welcome.relay_only);

    let (_bo, bo_welcome) = Client::join(&server, "bo").await?;
    assert_ne!(bo_welcome.id, ana_welcome.id);
    assert_eq!(bo_welcome.users.len(), 1);
    assert_eq!(bo_welcome.users[0].id, ana_welcome.id);
    assert_eq!(bo_welcome.users[0].nick.as_str(), "Ana");

    match ana.recv().await? {
        ServerMessage::UsersChanged { joined, left, away } => {
            assert!(left.is_empty() && away.is_empty());
            assert_eq!(joined.len(), 1);
            assert_eq!(joined[0].id, bo_welcome.id);
            assert_eq!(joined[0].nick.as_str(), "bo");
        }
        other => panic!("expected bo's arrival, got {other:?}"),
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_nick_taken_in_another_case_is_refused_and_the_connection_can_retry() -> anyhow::Result<()>
{
    let server = TestServer::start(Config::default()).await?;
    let (_ana, _) = Client::join(&server, "Ana").await?;
    let mut other = Client::connect(&server).await?;
    other.send(&join("ANA", None)).await?;
    let message = other.expect_error(ErrorCode::NickTaken).await?;
    assert!(message.contains("ANA"), "{message}");
    let welcome = other.join_as("Ana2", None).await?;
    assert_eq!(welcome.users.len(), 1);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_invalid_nick_says_why_and_the_connection_can_retry() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut client = Client::connect(&server).await?;
    for (nick, reason) in [
        ("   ", "a nickname cannot be empty"),
        (
            &"x".repeat(33),
            "a nickname can have at most 32 characters, this one has 33",
        ),
        (
            "a\u{200B}b",
            "a nickname cannot contain the invisible or control character U+200B",
        ),
    ] {
        client.send(&join(nick, None)).await?;
        assert_eq!(client.expect_error(ErrorCode::InvalidNick).await?, reason);
    }
    client.join_as("ana", None).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_protocol_version_is_refused_and_closed() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut client = Client::connect(&server).await?;
    client
        .send_text(r#"{"type":"join","version":99,"nick":"ana"}"#)
        .await?;
    let (before, code) = client.expect_close().await?;
    assert_eq!(code, 1008);
    match before.as_slice() {
        [ServerMessage::Error { code, message }] => {
            assert_eq!(*code, ErrorCode::UnsupportedVersion);
            assert!(message.contains("version 2, not 99"), "{message}");
        }
        other => panic!("expected one unsupported_version error, got {other:?}"),
    }
    // The server goes on.
    Client::join(&server, "ana").await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_first_message_must_be_a_join() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut client = Client::connect(&server).await?;
    client.send(&ClientMessage::Heartbeat).await?;
    client.expect_error(ErrorCode::NotJoined).await?;
    client.signal(&stranger(), offer("early")).await?;
    client.expect_error(ErrorCode::NotJoined).await?;
    client.send(&ClientMessage::Leave).await?;
    client.expect_error(ErrorCode::NotJoined).await?;
    let welcome = client.join_as("ana", None).await?;
    // The arrival is announced in the next batch, which may come before or after the answer
    // to a second join: wait for it first, so the next message is that answer.
    assert!(arrived(&client.recv().await?, &welcome.id), "ana's arrival");
    client.send(&join("ana", None)).await?;
    client.expect_error(ErrorCode::AlreadyJoined).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn leaving_is_announced_at_once_and_the_connection_can_join_again() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    bo.send(&ClientMessage::Leave).await?;
    assert!(departed(&ana.recv().await?, &bo_welcome.id));
    let again = bo.join_as("bo", None).await?;
    assert!(!again.resumed);
    assert_ne!(again.id, bo_welcome.id, "a left session is gone");
    assert!(arrived(&ana.recv().await?, &again.id), "bo's return");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn closing_the_socket_is_announced_at_once() -> anyhow::Result<()> {
    // With the default two-minute TTL, only a prompt leave passes within the test's patience.
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    bo.close().await?;
    assert!(departed(&ana.recv().await?, &bo_welcome.id));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_silent_connection_expires_and_is_announced() -> anyhow::Result<()> {
    let server = TestServer::start(short_ttl(TTL)).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let started = Instant::now();
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    let mut announced = Vec::new();
    while announced.len() < 2 {
        announced.push(ana.recv_heartbeating(HEARTBEAT).await?);
    }
    assert!(arrived(&announced[0], &bo_welcome.id), "{announced:?}");
    assert!(departed(&announced[1], &bo_welcome.id), "{announced:?}");
    assert!(
        started.elapsed() >= TTL,
        "expired after {:?}",
        started.elapsed()
    );
    // Bo's half of the story: told the session ended, then closed.
    let (before, code) = bo.expect_close().await?;
    assert_eq!(code, 1000);
    assert!(
        matches!(
            before.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::SessionEnded,
                ..
            }]
        ),
        "{before:?}"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn heartbeats_keep_a_user_online() -> anyhow::Result<()> {
    let server = TestServer::start(short_ttl(TTL)).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv_heartbeating(HEARTBEAT).await?;
    // Bo heartbeats on his own until told to stop.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let bo_task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = &mut stopped => return bo,
                _ = ticks.tick() => {
                    if bo.send(&ClientMessage::Heartbeat).await.is_err() {
                        return bo;
                    }
                }
            }
        }
    });
    // Silent users come and expire one after another while bo stays, for two TTLs.
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < 2 * TTL {
        round += 1;
        let (_silent, silent_welcome) = Client::join(&server, &format!("silent{round}")).await?;
        assert!(arrived(
            &ana.recv_heartbeating(HEARTBEAT).await?,
            &silent_welcome.id
        ));
        assert!(
            departed(&ana.recv_heartbeating(HEARTBEAT).await?, &silent_welcome.id),
            "only the silent user expires"
        );
    }
    // Once bo stops, he expires too, which shows his heartbeats were what kept him.
    let _ = stop.send(());
    let _bo = bo_task.await?;
    assert!(departed(
        &ana.recv_heartbeating(HEARTBEAT).await?,
        &bo_welcome.id
    ));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_connection_reclaimed_with_its_token_shows_no_flap() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, ana_welcome) = Client::join(&server, "ana").await?;
    let (bo, bo_welcome) = Client::join(&server, "Bo").await?;
    ana.recv().await?;
    bo.drop_connection();

    let mut bo = Client::connect(&server).await?;
    let resumed = bo.join_as("bo", Some(bo_welcome.token.clone())).await?;
    assert!(resumed.resumed);
    assert_eq!(resumed.id, bo_welcome.id);
    assert_eq!(resumed.nick, "Bo", "the nick keeps its first spelling");
    assert_eq!(resumed.token, bo_welcome.token);
    // The list is everyone announced so far, bo included: the app skips its own entry.
    let listed: Vec<_> = resumed.users.iter().map(|user| &user.id).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&&ana_welcome.id) && listed.contains(&&bo_welcome.id));

    // Ana saw neither a leave nor a join: the next thing she gets is bo's signal.
    bo.signal(&ana_welcome.id, offer("after reconnect")).await?;
    assert_signal(&ana.recv().await?, &bo, "Bo", &offer("after reconnect"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn reclaiming_a_live_session_ends_the_old_connection() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, ana_welcome) = Client::join(&server, "ana").await?;
    let (mut old_bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;

    let mut bo = Client::connect(&server).await?;
    let resumed = bo.join_as("BO", Some(bo_welcome.token.clone())).await?;
    assert!(resumed.resumed);
    assert_eq!(resumed.id, bo_welcome.id);

    let (before, code) = old_bo.expect_close().await?;
    assert_eq!(code, 1000);
    assert!(
        matches!(
            before.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::SessionEnded,
                ..
            }]
        ),
        "{before:?}"
    );
    bo.signal(&ana_welcome.id, offer("new connection")).await?;
    assert_signal(&ana.recv().await?, &bo, "bo", &offer("new connection"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_an_unknown_one_with_a_free_nick_joins_afresh()
-> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (_bo, bo_welcome) = Client::join(&server, "bo").await?;
    let forged = SessionToken::from_random_bytes([7; SessionToken::BYTES]);

    let mut thief = Client::connect(&server).await?;
    thief.send(&join("bo", Some(forged.clone()))).await?;
    thief.expect_error(ErrorCode::InvalidToken).await?;

    // A token that matches no session, as after a server restart, is no obstacle to a free nick.
    let welcome = thief.join_as("cy", Some(forged)).await?;
    assert!(!welcome.resumed);
    assert_eq!(welcome.users.len(), 1);
    assert_eq!(welcome.users[0].id, bo_welcome.id);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_user_is_listed_until_expiry_but_cannot_be_signalled() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    bo.drop_connection();
    // The server notices the drop soon; until then a signal still goes to the dying socket.
    let mut attempts = 0;
    loop {
        attempts += 1;
        ana.signal(&bo_welcome.id, offer("anyone there?")).await?;
        match tokio::time::timeout(Duration::from_millis(20), ana.recv()).await {
            Ok(reply) => match reply? {
                ServerMessage::Error {
                    code: ErrorCode::UnknownPeer,
                    ..
                } => break,
                other => panic!("expected unknown_peer or nothing, got {other:?}"),
            },
            Err(_) if attempts < 250 => {}
            Err(_) => panic!("the server never noticed bo's dropped connection"),
        }
    }
    let (_cy, cy_welcome) = Client::join(&server, "cy").await?;
    assert!(
        cy_welcome.users.iter().any(|user| user.id == bo_welcome.id),
        "bo is still listed while his session may be reclaimed"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_session_that_is_not_reclaimed_expires() -> anyhow::Result<()> {
    let server = TestServer::start(short_ttl(TTL)).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv_heartbeating(HEARTBEAT).await?;
    bo.drop_connection();
    assert!(departed(
        &ana.recv_heartbeating(HEARTBEAT).await?,
        &bo_welcome.id
    ));
    // The nick is free again, and the old token no longer resumes anything.
    let mut bo = Client::connect(&server).await?;
    let welcome = bo.join_as("bo", Some(bo_welcome.token)).await?;
    assert!(!welcome.resumed);
    assert_ne!(welcome.id, bo_welcome.id);
    server.stop().await?;
    Ok(())
}
