//! Several instances on one Redis as one service: people on different instances see each
//! other and signal each other, a nick or a room is one across them, an instance that dies is
//! forgotten and its people come back through another, and Redis going away costs joins, not
//! the service.

use std::collections::HashSet;
use std::time::Duration;

use ferry_protocol::{
    ClientMessage, ErrorCode, PairCode, PeerId, Place, RoomId, ServerMessage, SignalPayload,
};
use ferry_signaling::Config;
use ferry_signaling::PairLimits;
use tokio::time::Instant;

use crate::support::*;
use ferry_signaling::testing::{Proxy, RedisServer};

/// How long a killed test instance stays known: short, so a test sees it go.
const INSTANCE_TTL_SECS: u64 = 3;

/// How long news may take between instances, as a safety net only.
const ACROSS: Duration = Duration::from_secs(15);

/// An instance's configuration on `redis`.
fn on(redis: &RedisServer) -> Config {
    Config {
        redis: Some(redis.url()),
        instance_ttl: Duration::from_secs(INSTANCE_TTL_SECS),
        ..Config::default()
    }
}

/// Connects to `server`, joins as `nick` in `place` and waits until the client knows each of
/// `others` is there: listed in its welcome, or announced after it (with its own arrival, or
/// later).
async fn join_seeing(
    server: &TestServer,
    nick: &str,
    place: &Place,
    others: &[&Welcome],
) -> anyhow::Result<(Client, Welcome)> {
    let mut client = Client::connect(server).await?;
    let welcome = client.join_as_in(nick, None, place).await?;
    let mut known: HashSet<PeerId> = welcome.users.iter().map(|user| user.id.clone()).collect();
    while let Some(missing) = others.iter().find(|other| !known.contains(&other.id)) {
        let what = format!("the arrival of {}", missing.nick);
        let heard = client
            .hear(ACROSS, &what, |message| {
                matches!(message, ServerMessage::UsersChanged { .. })
            })
            .await?;
        if let ServerMessage::UsersChanged { joined, .. } = heard {
            known.extend(joined.into_iter().map(|user| user.id));
        }
    }
    Ok((client, welcome))
}

/// Waits until `client`, already joined, hears that `who` arrived.
async fn hears_arrival(client: &mut Client, who: &Welcome) -> anyhow::Result<()> {
    let what = format!("the arrival of {}", who.nick);
    client
        .hear(ACROSS, &what, |message| arrived(message, &who.id))
        .await
        .map(drop)
}

/// Asks for a pairing code into `client`'s room and returns it.
async fn make_code(client: &mut Client) -> anyhow::Result<PairCode> {
    client.send(&ClientMessage::MakeCode).await?;
    match client
        .hear(ACROSS, "a pairing code", |message| {
            matches!(
                message,
                ServerMessage::PairCode { .. } | ServerMessage::Error { .. }
            )
        })
        .await?
    {
        ServerMessage::PairCode { code, .. } => Ok(code),
        other => anyhow::bail!("expected a pairing code, got {other:?}"),
    }
}

/// Sends a join by `code` on a fresh connection to `server` and returns what came back.
async fn join_by_code(
    server: &TestServer,
    nick: &str,
    code: &PairCode,
) -> anyhow::Result<(Client, ServerMessage)> {
    let mut client = Client::connect(server).await?;
    client
        .send(&ClientMessage::Join {
            version: ferry_protocol::PROTOCOL_VERSION,
            nick: nick.into(),
            token: None,
            place: Place::Code(code.clone()),
        })
        .await?;
    let answer = client.recv().await?;
    Ok((client, answer))
}

fn answer(tag: &str) -> SignalPayload {
    SignalPayload::Answer {
        sdp: format!("v=0 {tag}"),
    }
}

#[tokio::test]
async fn people_on_two_instances_see_and_signal_each_other_and_share_one_namespace()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = TestServer::start(on(&redis)).await?;
    let b = TestServer::start(on(&redis)).await?;
    let (mut ana, ana_welcome) = Client::join(&a, "ana").await?;
    let (mut bo, bo_welcome) = join_seeing(&b, "bo", &Place::Lobby, &[&ana_welcome]).await?;
    hears_arrival(&mut ana, &bo_welcome).await?;

    ana.signal(&bo_welcome.id, offer("across")).await?;
    let heard = bo
        .hear(ACROSS, "ana's offer", |message| {
            matches!(message, ServerMessage::Signal { .. })
        })
        .await?;
    assert_signal(&heard, &ana, "ana", &offer("across"));
    bo.signal(&ana_welcome.id, answer("back")).await?;
    let heard = ana
        .hear(ACROSS, "bo's answer", |message| {
            matches!(message, ServerMessage::Signal { .. })
        })
        .await?;
    assert_signal(&heard, &bo, "bo", &answer("back"));

    // Ana's nick, and what looks like it, is taken on the other instance at once: the
    // claim is in Redis before her welcome.
    for lookalike in ["ana", "ANA", "аna"] {
        let mut eve = Client::connect(&b).await?;
        eve.send(&join(lookalike, None)).await?;
        eve.expect_error(ErrorCode::NickTaken).await?;
    }

    // Leaving is seen across, and the nick is free again there.
    ana.close().await?;
    bo.hear(ACROSS, "ana's departure", |message| {
        departed(message, &ana_welcome.id)
    })
    .await?;
    let (_again, welcome) = Client::join(&b, "ana").await?;
    assert_eq!(welcome.nick, "ana");
    Ok(())
}

#[tokio::test]
async fn a_room_made_through_one_instance_is_joined_through_the_other() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = TestServer::start(on(&redis)).await?;
    let b = TestServer::start(on(&redis)).await?;
    let room = Place::Room(RoomId::from_random_bytes([9; 16]));
    let (mut ana, ana_welcome) = Client::join_in(&a, "ana", &room).await?;
    let (mut eve, eve_welcome) = Client::join(&b, "eve").await?;
    let (mut bo, bo_welcome) = join_seeing(&b, "bo", &room, &[&ana_welcome]).await?;
    hears_arrival(&mut ana, &bo_welcome).await?;
    assert!(
        !bo_welcome
            .users
            .iter()
            .any(|user| user.id == eve_welcome.id),
        "the lobby shows in the room"
    );
    ana.signal(&bo_welcome.id, offer("in the room")).await?;
    let heard = bo
        .hear(ACROSS, "ana's offer", |message| {
            matches!(message, ServerMessage::Signal { .. })
        })
        .await?;
    assert_signal(&heard, &ana, "ana", &offer("in the room"));
    // From the lobby, someone in the room is nobody.
    eve.signal(&ana_welcome.id, offer("from outside")).await?;
    eve.expect_error(ErrorCode::UnknownPeer).await?;
    Ok(())
}

#[tokio::test]
async fn a_killed_instance_is_forgotten_and_its_people_come_back_through_another()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let ttl = INSTANCE_TTL_SECS.to_string();
    let a = Binary::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &redis.url(),
            "--instance-ttl-secs",
            &ttl,
        ],
        &[("RUST_LOG", "warn")],
    )?;
    let a_addr = a.addr("http").await?;
    let b = TestServer::start(on(&redis)).await?;
    let (_ana, ana_welcome) = Client::join(&TestServer::at(a_addr), "ana").await?;
    let (mut bo, _) = join_seeing(&b, "bo", &Place::Lobby, &[&ana_welcome]).await?;

    let killed = Instant::now();
    a.kill().await?;
    bo.hear(ACROSS, "ana's departure", |message| {
        departed(message, &ana_welcome.id)
    })
    .await?;
    let gone_after = killed.elapsed();
    // Her instance's liveness runs out after its time-to-live, and B looks three times
    // per time-to-live.
    assert!(
        gone_after <= Duration::from_secs(INSTANCE_TTL_SECS * 2),
        "ana was listed {gone_after:?} after her instance died"
    );

    // Her page, sent to B, joins again under her nick with her token.
    let mut back = Client::connect(&b).await?;
    let welcome = back.join_as("ana", Some(ana_welcome.token.clone())).await?;
    assert_eq!(welcome.nick, "ana");
    assert_eq!(welcome.token, ana_welcome.token, "the page's token changed");
    bo.hear(ACROSS, "ana back", |message| arrived(message, &welcome.id))
        .await?;
    Ok(())
}

#[tokio::test]
async fn with_redis_down_joins_are_refused_clearly_and_come_back_with_it() -> anyhow::Result<()> {
    let mut redis = RedisServer::start().await?;
    let a = TestServer::start(on(&redis)).await?;
    let (_ana, ana_welcome) = Client::join(&a, "ana").await?;
    redis.kill();

    let mut bo = Client::connect(&a).await?;
    bo.send(&join("bo", None)).await?;
    let said = bo.expect_error(ErrorCode::Unavailable).await?;
    assert!(said.contains("restarting"), "{said}");
    let health = http_get(a.addr, "/healthz").await?;
    assert_eq!(health.status, 503);
    assert!(health.body.contains("degraded"), "{}", health.body);

    redis.restart().await?;
    // As a page does: it tries again by itself until the service takes it.
    let deadline = Instant::now() + ACROSS;
    loop {
        bo.send(&join("bo", None)).await?;
        match bo.recv().await? {
            ServerMessage::Welcome { .. } => break,
            ServerMessage::Error {
                code: ErrorCode::Unavailable,
                ..
            } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => anyhow::bail!("expected a welcome once Redis was back, got {other:?}"),
        }
    }
    let health = http_get(a.addr, "/healthz").await?;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    // Redis lost everything; the instance wrote its sessions again, so another instance
    // lists ana and refuses her nick.
    let b = TestServer::start(on(&redis)).await?;
    join_seeing(&b, "carl", &Place::Lobby, &[&ana_welcome]).await?;
    let mut eve = Client::connect(&b).await?;
    eve.send(&join("ana", None)).await?;
    eve.expect_error(ErrorCode::NickTaken).await?;
    Ok(())
}

#[tokio::test]
async fn news_redis_did_not_take_reaches_the_others_once_it_is_reachable_again()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let way = Proxy::start(redis.port()).await?;
    // Long enough that the cut below does not make B forget A altogether.
    let lasting = |url: String| Config {
        redis: Some(url),
        instance_ttl: Duration::from_secs(10),
        ..Config::default()
    };
    let a = TestServer::start(lasting(way.url())).await?;
    let b = TestServer::start(lasting(redis.url())).await?;
    let (ana, ana_welcome) = Client::join(&a, "ana").await?;
    let (mut bo, _) = join_seeing(&b, "bo", &Place::Lobby, &[&ana_welcome]).await?;

    // A loses its way to Redis, and Ana leaves meanwhile: A cannot tell anyone yet.
    way.cut();
    ana.close().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    way.mend();
    bo.hear(ACROSS, "ana's departure", |message| {
        departed(message, &ana_welcome.id)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_pairing_code_made_through_one_instance_leads_in_through_another_once()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = TestServer::start(on(&redis)).await?;
    let b = TestServer::start(on(&redis)).await?;
    let room = RoomId::from_random_bytes([3; 16]);
    let (mut ana, ana_welcome) = Client::join_in(&a, "ana", &Place::Room(room.clone())).await?;
    let code = make_code(&mut ana).await?;

    let (mut bo, welcome) = join_by_code(&b, "bo", &code).await?;
    let ServerMessage::Welcome {
        room: led_to,
        users,
        ..
    } = welcome
    else {
        anyhow::bail!("expected a welcome by the code, got {welcome:?}");
    };
    assert_eq!(led_to, Some(room), "the welcome names another room");
    if !users.iter().any(|user| user.id == ana_welcome.id) {
        hears_arrival(&mut bo, &ana_welcome).await?;
    }

    // Used once, through either instance.
    for server in [&a, &b] {
        let (_, refused) = join_by_code(server, "eve", &code).await?;
        assert!(
            matches!(
                refused,
                ServerMessage::Error {
                    code: ErrorCode::WrongCode,
                    ..
                }
            ),
            "a used code let someone in: {refused:?}"
        );
    }

    // A code ends with its maker, wherever it is tried: by the time the others hear that
    // she left, her code is gone.
    let again = make_code(&mut ana).await?;
    ana.close().await?;
    bo.hear(ACROSS, "ana's departure", |message| {
        matches!(message, ServerMessage::UsersChanged { left, .. } if left.contains(&ana_welcome.id))
    })
    .await?;
    let (_, answer) = join_by_code(&b, "cy", &again).await?;
    assert!(
        matches!(
            answer,
            ServerMessage::Error {
                code: ErrorCode::WrongCode,
                ..
            }
        ),
        "a code outlived its maker: {answer:?}"
    );
    Ok(())
}

#[tokio::test]
async fn wrong_codes_are_one_budget_across_instances() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let strict = || {
        let mut config = on(&redis);
        config.limits.pairing = PairLimits {
            tries_per_address: 3,
            ..PairLimits::default()
        };
        config
    };
    let a = TestServer::start(strict()).await?;
    let b = TestServer::start(strict()).await?;
    let wrong = PairCode::parse("000000")?;
    // Three wrong tries from one address, spread over both instances...
    for server in [&a, &b, &a] {
        let (_, answer) = join_by_code(server, "guesser", &wrong).await?;
        assert!(
            matches!(
                answer,
                ServerMessage::Error {
                    code: ErrorCode::WrongCode,
                    ..
                }
            ),
            "{answer:?}"
        );
    }
    // ...use up its budget on both.
    for server in [&b, &a] {
        let (_, answer) = join_by_code(server, "guesser", &wrong).await?;
        assert!(
            matches!(
                answer,
                ServerMessage::Error {
                    code: ErrorCode::TooManyTries,
                    ..
                }
            ),
            "a fourth wrong try was looked up: {answer:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn sessions_per_address_are_one_budget_across_instances() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let capped = || {
        let mut config = on(&redis);
        config.limits.max_sessions_per_ip = 2;
        config
    };
    let a = TestServer::start(capped()).await?;
    let b = TestServer::start(capped()).await?;
    let (_one, _) = Client::join(&a, "one").await?;
    let (two, _) = Client::join(&b, "two").await?;
    for server in [&a, &b] {
        let mut third = Client::connect(server).await?;
        third.send(&join("three", None)).await?;
        third.expect_error(ErrorCode::TooManySessions).await?;
    }
    // One leaving frees a place, whichever instance it was on.
    two.close().await?;
    let deadline = Instant::now() + ACROSS;
    loop {
        let mut third = Client::connect(&a).await?;
        third.send(&join("three", None)).await?;
        match third.recv().await? {
            ServerMessage::Welcome { .. } => break,
            ServerMessage::Error {
                code: ErrorCode::TooManySessions,
                ..
            } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => anyhow::bail!("expected a welcome once a place was free, got {other:?}"),
        }
    }
    Ok(())
}
