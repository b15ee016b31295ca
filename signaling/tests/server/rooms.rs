//! Places: the lobby, one network's lobby and private rooms are worlds of their own. Nicks,
//! lists and signals stay inside one; a room is found only by its id or a pairing code, and
//! nothing about it reaches anyone outside.

use std::net::IpAddr;

use anyhow::bail;
use ferry_protocol::{
    ClientMessage, ErrorCode, LobbyScope, PairCode, Place, RoomId, ServerInfo, ServerMessage,
};
use ferry_signaling::{Config, Limits};

use crate::support::{Client, TestServer, arrived, departed, http_get, offer, stranger};

fn room(byte: u8) -> RoomId {
    RoomId::from_random_bytes([byte; RoomId::BYTES])
}

fn in_room(byte: u8) -> Place {
    Place::Room(room(byte))
}

fn lobby(scope: LobbyScope) -> Config {
    Config {
        lobby: scope,
        trust_proxy: true,
        ..Config::default()
    }
}

/// Asks for a pairing code on `client`'s session and returns it.
async fn make_code(client: &mut Client) -> anyhow::Result<PairCode> {
    client.send(&ClientMessage::MakeCode).await?;
    match client.recv().await? {
        ServerMessage::PairCode {
            code,
            expires_in_secs,
        } => {
            assert_eq!(expires_in_secs, 600);
            Ok(code)
        }
        other => bail!("expected a pairing code, got {other:?}"),
    }
}

/// The nicks of the first `n` arrivals `client` hears of.
async fn arrivals(client: &mut Client, n: usize) -> anyhow::Result<Vec<String>> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match client.recv().await? {
            ServerMessage::UsersChanged { joined, .. } => {
                seen.extend(joined.into_iter().map(|user| user.nick.to_string()));
            }
            other => bail!("expected arrivals, got {other:?}"),
        }
    }
    Ok(seen)
}

/// Shows that `client` heard nothing since its last message: `from` signals it a marker, which
/// must be the next thing it gets.
async fn heard_nothing(client: &mut Client, from: &mut Client, tag: &str) -> anyhow::Result<()> {
    from.signal(&client.id(), offer(tag)).await?;
    match client.recv().await? {
        ServerMessage::Signal { payload, .. } if payload == offer(tag) => Ok(()),
        other => bail!("expected only the marker {tag}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_same_nick_lives_in_two_places_and_each_place_sees_only_its_own() -> anyhow::Result<()>
{
    let server = TestServer::start(Config::default()).await?;
    let (mut ana_lobby, _) = Client::join(&server, "ana").await?;
    let (mut cy, _) = Client::join(&server, "cy").await?;
    let arrival = ana_lobby.recv().await?;
    assert!(arrived(&arrival, &cy.id()));

    let (mut ana_room, welcome) = Client::join_in(&server, "ana", &in_room(1)).await?;
    assert!(welcome.users.is_empty(), "a new room lists nobody");
    assert_eq!(welcome.room, None, "a room joined by its id is not echoed");
    let (bo, welcome) = Client::join_in(&server, "bo", &in_room(1)).await?;
    assert_eq!(welcome.users.len(), 1);
    assert_eq!(welcome.users[0].nick.as_str(), "ana");
    assert_eq!(welcome.users[0].id, ana_room.id());
    let arrival = ana_room.recv().await?;
    assert!(arrived(&arrival, &bo.id()));

    // Nobody in the lobby heard of either, and nobody in the room heard of cy.
    heard_nothing(&mut ana_lobby, &mut cy, "lobby").await?;
    bo.close().await?;
    let departure = ana_room.recv().await?;
    assert!(departed(&departure, &welcome.id));
    heard_nothing(&mut ana_lobby, &mut cy, "still the lobby").await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_signal_to_someone_in_another_place_is_refused_as_to_someone_absent() -> anyhow::Result<()>
{
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, _) = Client::join_in(&server, "bo", &in_room(2)).await?;
    let (mut cy, _) = Client::join_in(&server, "cy", &in_room(3)).await?;
    for (from, to) in [(&mut bo, ana.id()), (&mut cy, ana.id())] {
        from.signal(&to, offer("across")).await?;
        let message = from.expect_error(ErrorCode::UnknownPeer).await?;
        from.signal(&stranger(), offer("nowhere")).await?;
        let absent = from.expect_error(ErrorCode::UnknownPeer).await?;
        assert_eq!(
            message, absent,
            "someone elsewhere looks exactly like someone absent"
        );
    }
    let bo_id = bo.id();
    ana.signal(&bo_id, offer("into a room")).await?;
    ana.expect_error(ErrorCode::UnknownPeer).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_network_lobby_holds_the_people_of_one_public_address_and_every_private_one()
-> anyhow::Result<()> {
    let server = TestServer::start(Config {
        trust_proxy: false,
        ..lobby(LobbyScope::Network)
    })
    .await?;
    // Two loopback addresses are one (private) network.
    let first: IpAddr = "127.0.0.1".parse()?;
    let second: IpAddr = "127.0.0.2".parse()?;
    let mut ana = Client::connect_from(&server, first).await?;
    ana.join_as("ana", None).await?;
    let mut bo = Client::connect_from(&server, second).await?;
    bo.join_as("bo", None).await?;
    let mut seen = arrivals(&mut ana, 2).await?;
    seen.sort();
    assert_eq!(seen, ["ana", "bo"]);
    server.stop().await?;

    // Behind a trusted proxy, each public address is a lobby of its own.
    let server = TestServer::start(lobby(LobbyScope::Network)).await?;
    let mut cy = Client::connect_forwarded(&server, "203.0.113.5").await?;
    cy.join_as("cy", None).await?;
    let mut dee = Client::connect_forwarded(&server, "198.51.100.7").await?;
    dee.join_as("dee", None).await?;
    // The same nick is free in another network's lobby.
    let mut other_cy = Client::connect_forwarded(&server, "198.51.100.7").await?;
    other_cy.join_as("cy", None).await?;
    let mut eve = Client::connect_forwarded(&server, "10.0.0.1, 203.0.113.5").await?;
    eve.join_as("eve", None).await?;
    let mut seen = arrivals(&mut cy, 2).await?;
    seen.sort();
    assert_eq!(seen, ["cy", "eve"]);
    heard_nothing(&mut cy, &mut eve, "after eve").await?;
    let mut seen = arrivals(&mut dee, 2).await?;
    seen.sort();
    assert_eq!(seen, ["cy", "dee"]);
    heard_nothing(&mut dee, &mut other_cy, "after cy").await?;
    let info: ServerInfo = serde_json::from_str(&http_get(server.addr, "/api/server").await?.body)?;
    assert_eq!(info.lobby, LobbyScope::Network);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn nothing_anyone_outside_a_room_is_told_names_the_room_or_its_members() -> anyhow::Result<()>
{
    let server = TestServer::start(Config::default()).await?;
    let secret = room(4);
    let (mut ana, _) = Client::join_in(&server, "ana-secret", &Place::Room(secret.clone())).await?;
    let code = make_code(&mut ana).await?;
    let (bo, _) = Client::join_in(&server, "bo-secret", &Place::Code(code.clone())).await?;
    let (mut cy, _) = Client::join(&server, "cy").await?;
    let (mut dee, _) = Client::join_in(&server, "dee", &in_room(5)).await?;

    let mut heard = Vec::new();
    // Everything cy and dee can try: signalling the members, joining with a used code,
    // taking the members' nicks, and the classic API.
    for outsider in [&mut cy, &mut dee] {
        for to in [ana.id(), bo.id()] {
            outsider.signal(&to, offer("probe")).await?;
            heard.push(outsider.expect_error(ErrorCode::UnknownPeer).await?);
        }
    }
    let mut eve = Client::connect(&server).await?;
    eve.send(&crate::support::join("eve", None)).await?;
    heard.push(format!("{:?}", eve.recv().await?));
    let mut fay = Client::connect(&server).await?;
    fay.send(&ClientMessage::Join {
        version: ferry_protocol::PROTOCOL_VERSION,
        nick: "fay".into(),
        token: None,
        place: Place::Code(code),
    })
    .await?;
    heard.push(fay.expect_error(ErrorCode::WrongCode).await?);
    // Looking the members up by nick finds nobody (the answer names only what was asked).
    let friends = http_get(server.addr, "/?friends=ana-secret&friends=bo-secret").await?;
    assert!(!friends.body.contains("identity"), "{}", friends.body);
    heard.push(
        friends
            .body
            .replace("ana-secret", "")
            .replace("bo-secret", ""),
    );
    for path in [
        "/?listUsers=true",
        "/?username=ana-secret&identity=abc",
        "/api/server",
        "/healthz",
    ] {
        heard.push(http_get(server.addr, path).await?.body);
    }
    heard_nothing(&mut cy, &mut eve, "cy").await?;
    let ana_id = ana.id();
    for text in &heard {
        for secret_text in [
            secret.as_str(),
            ana_id.as_str(),
            bo.id().as_str(),
            "bo-secret",
        ] {
            assert!(
                !text.contains(secret_text),
                "{text:?} gives away {secret_text}"
            );
        }
    }
    // The classic registration of ana's nick went into the lobby, where it is free.
    assert!(
        heard
            .iter()
            .any(|text| text.contains("<update>true</update>"))
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_room_is_full_at_its_size_and_gone_with_its_last_member() -> anyhow::Result<()> {
    let server = TestServer::start(Config {
        limits: Limits {
            room_size: 2,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let (ana, _) = Client::join_in(&server, "ana", &in_room(6)).await?;
    let (bo, _) = Client::join_in(&server, "bo", &in_room(6)).await?;
    let mut cy = Client::connect(&server).await?;
    cy.send(&ClientMessage::Join {
        version: ferry_protocol::PROTOCOL_VERSION,
        nick: "cy".into(),
        token: None,
        place: in_room(6),
    })
    .await?;
    let full = cy.expect_error(ErrorCode::RoomFull).await?;
    assert!(full.contains("2 people"), "{full}");
    ana.close().await?;
    bo.close().await?;
    // The room is gone: whoever comes next finds it new, and the nicks free.
    let welcome = cy.join_as_in("ana", None, &in_room(6)).await?;
    assert!(welcome.users.is_empty(), "{:?}", welcome.users);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_pairing_code_leads_one_person_into_the_room_once() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut lobby_user, _) = Client::join(&server, "lobby").await?;
    lobby_user.send(&ClientMessage::MakeCode).await?;
    lobby_user.expect_error(ErrorCode::NoCode).await?;

    let (mut ana, _) = Client::join_in(&server, "ana", &in_room(7)).await?;
    let replaced = make_code(&mut ana).await?;
    let code = make_code(&mut ana).await?;
    let mut bo = Client::connect(&server).await?;
    let welcome = bo
        .join_as_in("bo", None, &Place::Code(code.clone()))
        .await?;
    assert_eq!(
        welcome.room,
        Some(room(7)),
        "the welcome names the room to come back to"
    );
    assert_eq!(welcome.users.len(), 1);
    assert_eq!(welcome.users[0].id, ana.id());

    // Used once, and the code it replaced was ended by it.
    for (n, used) in [code, replaced].into_iter().enumerate() {
        let mut cy = Client::connect(&server).await?;
        cy.send(&ClientMessage::Join {
            version: ferry_protocol::PROTOCOL_VERSION,
            nick: "cy".into(),
            token: None,
            place: Place::Code(used),
        })
        .await?;
        let wrong = cy.expect_error(ErrorCode::WrongCode).await?;
        assert!(
            wrong.contains("mistyped, used already or expired"),
            "{wrong}"
        );
        // The connection goes on and can join somewhere else.
        cy.join_as(&format!("cy{n}"), None).await?;
    }

    // A code dies with its maker's session.
    let code = make_code(&mut ana).await?;
    ana.send(&ClientMessage::Leave).await?;
    let mut dee = Client::connect(&server).await?;
    dee.send(&ClientMessage::Join {
        version: ferry_protocol::PROTOCOL_VERSION,
        nick: "dee".into(),
        token: None,
        place: Place::Code(code),
    })
    .await?;
    dee.expect_error(ErrorCode::WrongCode).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_eleventh_wrong_code_in_a_minute_from_one_address_is_not_even_tried()
-> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join_in(&server, "ana", &in_room(8)).await?;
    let good = make_code(&mut ana).await?;
    let wrong = PairCode::from_number((good.as_str().parse::<u32>()? + 1) % PairCode::SPACE);
    let first: IpAddr = "127.0.0.1".parse()?;
    let mut guesser = Client::connect_from(&server, first).await?;
    let try_code = |code: &PairCode| ClientMessage::Join {
        version: ferry_protocol::PROTOCOL_VERSION,
        nick: "guesser".into(),
        token: None,
        place: Place::Code(code.clone()),
    };
    for _ in 0..10 {
        guesser.send(&try_code(&wrong)).await?;
        guesser.expect_error(ErrorCode::WrongCode).await?;
    }
    guesser.send(&try_code(&good)).await?;
    let refused = guesser.expect_error(ErrorCode::TooManyTries).await?;
    assert!(
        refused.starts_with("too many wrong codes from your address; wait "),
        "{refused}"
    );
    let wait: u64 = refused
        .trim_start_matches("too many wrong codes from your address; wait ")
        .trim_end_matches(" s before trying again")
        .parse()?;
    assert!((50..=60).contains(&wait), "{refused}");
    // Another address still may, and the good code still works.
    let mut other = Client::connect_from(&server, "127.0.0.2".parse()?).await?;
    let welcome = other.join_as_in("other", None, &Place::Code(good)).await?;
    assert_eq!(welcome.room, Some(room(8)));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn without_a_lobby_people_meet_in_rooms_only() -> anyhow::Result<()> {
    let server = TestServer::start(lobby(LobbyScope::Off)).await?;
    let mut ana = Client::connect(&server).await?;
    ana.send(&crate::support::join("ana", None)).await?;
    let refused = ana.expect_error(ErrorCode::NoLobby).await?;
    assert!(refused.contains("private room"), "{refused}");
    ana.join_as_in("ana", None, &in_room(9)).await?;
    let info: ServerInfo = serde_json::from_str(&http_get(server.addr, "/api/server").await?.body)?;
    assert_eq!(
        info,
        ServerInfo {
            lobby: LobbyScope::Off,
            room_size: Limits::default().room_size
        }
    );
    let classic = http_get(server.addr, "/?username=bo&identity=abc&listUsers=true").await?;
    assert!(
        classic.body.contains("<update>false</update>"),
        "{}",
        classic.body
    );
    assert!(!classic.body.contains("ana"), "{}", classic.body);
    server.stop().await?;
    Ok(())
}
