//! The registry's rules, driven without a runtime: lingering and expiry, batched
//! announcements, rooms, and what a client that does not read costs; the nick namespace in
//! `names`.

use std::net::IpAddr;
use std::time::Duration;

use ferry_protocol::{PairCode, Place, RoomId};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Bytes;

use super::*;
use crate::Limits;
use crate::inbound::SignalLimits;
use crate::outbound::Receiver;

mod names;

const TTL: Duration = Duration::from_secs(120);

/// A registry entry point for one test connection: its handle's receiving ends.
struct Peer {
    rx: Receiver,
    kick: oneshot::Receiver<Kick>,
}

fn connection(id: ConnId) -> (Connection, Peer) {
    connection_with_budget(id, 1 << 20)
}

fn connection_with_budget(id: ConnId, budget: usize) -> (Connection, Peer) {
    let (tx, rx) = crate::outbound::queue(budget);
    let (kick, kick_rx) = oneshot::channel();
    (
        Connection::new(id, tx, kick, None, SignalLimits::default(), Instant::now()),
        Peer { rx, kick: kick_rx },
    )
}

fn registry() -> Registry {
    Registry::new(
        TTL,
        IceConfig::default(),
        30,
        LobbyScope::Everyone,
        &Limits::default(),
    )
}

fn fresh(byte: u8) -> Fresh {
    Fresh {
        id: PeerId::from_random_bytes([byte; PeerId::BYTES]),
        token: SessionToken::from_random_bytes([byte; SessionToken::BYTES]),
        claimed: false,
    }
}

fn nick(raw: &str) -> Nick {
    Nick::new(raw).unwrap()
}

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([192, 0, 2, last]))
}

/// Decodes everything queued for `peer` so far, joining a message sent in parts.
fn received(peer: &mut Peer) -> Vec<ServerMessage> {
    drain(&mut peer.rx)
}

/// Takes everything queued on `rx` so far, as the writer would, and decodes the messages.
pub(super) fn drain(rx: &mut Receiver) -> Vec<ServerMessage> {
    let mut messages = Vec::new();
    while let Some(message) = rx.try_recv() {
        // As the writer does once it has written a message.
        rx.sent(&message);
        let text = match message {
            Outbound::Text(text) | Outbound::Relayed { text, .. } => text.as_str().to_owned(),
            Outbound::Raw(_) => continue,
            Outbound::Parts(parts) => String::from_utf8(parts.concat()).unwrap(),
            Outbound::Close(_) => continue,
        };
        messages.push(serde_json::from_str(&text).unwrap());
    }
    messages
}

#[test]
fn arrivals_and_departures_are_announced_together_and_welcomes_list_the_last_announcement() {
    let now = Instant::now();
    let mut registry = registry();
    let (conn, mut ana) = connection(1);
    let ana_id = registry
        .join(nick("ana"), None, &Place::Lobby, fresh(1), conn, now)
        .unwrap();
    let (conn, mut bo) = connection(2);
    let bo_id = registry
        .join(nick("bo"), None, &Place::Lobby, fresh(2), conn, now)
        .unwrap();
    // Both joined before any announcement: both welcomes list nobody yet.
    for peer in [&mut ana, &mut bo] {
        let messages = received(peer);
        assert!(
            matches!(&messages[..], [ServerMessage::Welcome { users, .. }] if users.is_empty()),
            "{messages:?}"
        );
    }
    registry.announce();
    let both = ServerMessage::UsersChanged {
        joined: vec![
            UserInfo {
                id: ana_id.clone(),
                nick: nick("ana"),
            },
            UserInfo {
                id: bo_id.clone(),
                nick: nick("bo"),
            },
        ],
        left: Vec::new(),
        away: Vec::new(),
    };
    assert_eq!(received(&mut ana), vec![both.clone()]);
    assert_eq!(received(&mut bo), vec![both]);

    // A later welcome lists both, and nothing more is announced until something changes.
    let (conn, mut cy) = connection(3);
    registry
        .join(nick("cy"), None, &Place::Lobby, fresh(3), conn, now)
        .unwrap();
    match &received(&mut cy)[..] {
        [ServerMessage::Welcome { users, .. }] => assert_eq!(users.len(), 2),
        other => panic!("expected a welcome, got {other:?}"),
    }
    registry.leave(&bo_id, 2);
    registry.announce();
    let cy_id = fresh(3).id;
    assert_eq!(
        received(&mut ana),
        vec![ServerMessage::UsersChanged {
            joined: vec![UserInfo {
                id: cy_id,
                nick: nick("cy"),
            }],
            left: vec![bo_id],
            away: Vec::new(),
        }]
    );
    registry.announce();
    assert!(received(&mut ana).is_empty());
}

#[test]
fn a_lingering_session_is_offline_for_signals_unlisted_after_the_grace_and_reclaimable_until_it_expires()
 {
    let now = Instant::now();
    let mut registry = registry();
    let grace = Limits::default().linger_grace;
    let (conn, mut ana) = connection(1);
    let ana_id = registry
        .join(nick("ana"), None, &Place::Lobby, fresh(1), conn, now)
        .unwrap();
    let (conn, _bo) = connection(2);
    let bo_fresh = fresh(2);
    let bo_token = bo_fresh.token.clone();
    let bo_id = registry
        .join(nick("bo"), None, &Place::Lobby, bo_fresh, conn, now)
        .unwrap();
    registry.announce();
    assert_eq!(received(&mut ana).len(), 2, "welcome and the arrivals");

    let dropped_at = now + Duration::from_secs(10);
    registry.linger(&bo_id, 2, dropped_at);
    let refused = registry.relay(
        &ana_id,
        &bo_id,
        SignalPayload::Offer { sdp: "v=0".into() },
        0,
        dropped_at,
    );
    assert_eq!(refused.map_err(|r| r.code), Err(ErrorCode::UnknownPeer));
    // Within the grace, nothing changes for the others.
    registry.sweep(dropped_at + grace - Duration::from_millis(1));
    registry.announce();
    assert!(received(&mut ana).is_empty());
    // After it, they hear bo is away, and a newcomer's welcome leaves bo out.
    registry.sweep(dropped_at + grace);
    registry.announce();
    let left = ServerMessage::UsersChanged {
        joined: Vec::new(),
        left: Vec::new(),
        away: vec![bo_id.clone()],
    };
    assert_eq!(received(&mut ana), vec![left]);
    let (conn, mut cy) = connection(3);
    registry
        .join(
            nick("cy"),
            None,
            &Place::Lobby,
            fresh(3),
            conn,
            dropped_at + grace,
        )
        .unwrap();
    match &received(&mut cy)[..] {
        [ServerMessage::Welcome { users, .. }] => {
            assert!(users.iter().all(|user| user.id != bo_id), "{users:?}");
        }
        other => panic!("expected a welcome, got {other:?}"),
    }

    // Bo comes back with the token, under the same id, and is announced again.
    let back_at = dropped_at + grace + Duration::from_secs(5);
    let (conn, _bo_again) = connection(4);
    let resumed = registry.join(
        nick("bo"),
        Some(&bo_token),
        &Place::Lobby,
        fresh(4),
        conn,
        back_at,
    );
    assert_eq!(resumed, Ok(bo_id.clone()));
    registry.announce();
    assert!(
        received(&mut ana)
            .iter()
            .any(|message| matches!(message, ServerMessage::UsersChanged { joined, .. } if joined.iter().any(|user| user.id == bo_id)))
    );

    // Dropped again and never back: unlisted after the grace, gone at the time-to-live, and
    // announced once.
    registry.linger(&bo_id, 4, back_at);
    registry.touch(&ana_id, 1, back_at + TTL);
    registry.touch(&fresh(3).id, 3, back_at + TTL);
    registry.sweep(back_at + grace);
    registry.announce();
    assert_eq!(received(&mut ana).len(), 1);
    registry.sweep(back_at + TTL);
    registry.announce();
    assert!(received(&mut ana).is_empty());
    assert_eq!(registry.online(None, back_at + TTL).len(), 2);
}

#[test]
fn only_the_current_connection_can_end_a_session() {
    let now = Instant::now();
    let mut registry = registry();
    let (conn, mut ana) = connection(1);
    registry
        .join(nick("ana"), None, &Place::Lobby, fresh(1), conn, now)
        .unwrap();
    let (conn, _old) = connection(2);
    let bo = fresh(2);
    let token = bo.token.clone();
    let bo_id = registry
        .join(nick("bo"), None, &Place::Lobby, bo, conn, now)
        .unwrap();
    registry.announce();
    let (conn, _new) = connection(3);
    let resumed = registry.join(nick("bo"), Some(&token), &Place::Lobby, fresh(3), conn, now);
    assert_eq!(resumed, Ok(bo_id.clone()));

    // The old connection's end changes nothing; the new one's leave is announced.
    registry.leave(&bo_id, 2);
    registry.linger(&bo_id, 2, now);
    registry.announce();
    assert_eq!(received(&mut ana).len(), 2, "welcome and the arrivals only");
    registry.leave(&bo_id, 3);
    registry.announce();
    assert_eq!(
        received(&mut ana),
        vec![ServerMessage::UsersChanged {
            joined: Vec::new(),
            left: vec![bo_id],
            away: Vec::new(),
        }]
    );
}

#[test]
fn a_client_that_does_not_read_is_cut_off_at_its_byte_budget() {
    let now = Instant::now();
    let mut registry = registry();
    let (conn, mut ana) = connection_with_budget(1, 4096);
    registry
        .join(nick("ana"), None, &Place::Lobby, fresh(1), conn, now)
        .unwrap();
    // Ana reads nothing while people come and go, each announced to her.
    let mut announced = 0;
    let mut others = Vec::new();
    while ana.kick.try_recv().is_err() {
        let byte = 2 + u8::try_from(announced).unwrap();
        let (conn, peer) = connection(u64::from(byte));
        registry
            .join(
                nick(&format!("someone{byte}")),
                None,
                &Place::Lobby,
                fresh(byte),
                conn,
                now,
            )
            .unwrap();
        others.push(peer);
        registry.announce();
        announced += 1;
        assert!(announced < 100, "never cut off");
    }
    assert!(received(&mut ana).len() <= announced + 1);
}

#[test]
fn signals_past_what_a_reader_takes_are_refused_to_their_sender_and_the_reader_stays() {
    let now = Instant::now();
    let mut registry = registry();
    let (conn, mut ana) = connection_with_budget(1, 4096);
    let ana_id = registry
        .join(nick("ana"), None, &Place::Lobby, fresh(1), conn, now)
        .unwrap();
    let (conn, _bo) = connection(2);
    let bo_id = registry
        .join(nick("bo"), None, &Place::Lobby, fresh(2), conn, now)
        .unwrap();
    let big = SignalPayload::Offer {
        sdp: "x".repeat(1000),
    };
    let mut relayed = 0;
    let refused = loop {
        match registry.relay(&bo_id, &ana_id, big.clone(), 0, now) {
            Ok(()) => relayed += 1,
            Err(refusal) => break refusal,
        }
        assert!(relayed < 100, "never refused");
    };
    assert_eq!(refused.code, ErrorCode::PeerBusy);
    // Four signals of some 1.1 kB fit in 4 KiB beside the welcome; the fifth does not.
    assert!((3..=5).contains(&relayed), "{relayed} signals");
    assert!(ana.kick.try_recv().is_err(), "the reader was cut off");
    // Once she has read them, there is room again.
    assert_eq!(received(&mut ana).len(), relayed + 1);
    assert!(registry.relay(&bo_id, &ana_id, big, 0, now).is_ok());
}

#[test]
fn a_welcome_carries_the_listed_users_without_copying_them() {
    let listed = Bytes::from_static(br#"[{"id":"ab","nick":"x"}]"#);
    let parts = super::joining::splice_users(
        r#"{"type":"welcome","users":[],"heartbeat_secs":30}"#,
        listed.clone(),
    )
    .unwrap();
    assert_eq!(parts[1].as_ptr(), listed.as_ptr());
    assert_eq!(
        parts.concat(),
        br#"{"type":"welcome","users":[{"id":"ab","nick":"x"}],"heartbeat_secs":30}"#
    );
}

#[test]
fn a_room_is_kept_while_someone_is_in_it_lingering_or_not_and_dropped_with_the_last() {
    let now = Instant::now();
    let mut registry = registry();
    let room = Place::Room(RoomId::from_random_bytes([9; RoomId::BYTES]));
    let (conn, _ana) = connection(1);
    let ana = registry
        .join(nick("ana"), None, &room, fresh(1), conn, now)
        .unwrap();
    let (conn, _bo) = connection(2);
    let bo = registry
        .join(nick("bo"), None, &room, fresh(2), conn, now)
        .unwrap();
    let code = registry
        .make_code(&ana, 1, [42, 0, 0, 0, 0, 0, 0, 0], now)
        .unwrap();
    registry.announce();
    assert_eq!(registry.places.len(), 1);

    registry.leave(&bo, 2);
    registry.linger(&ana, 1, now);
    assert_eq!(
        registry.places.len(),
        1,
        "a lingering member keeps the room"
    );
    registry.sweep(now + TTL);
    registry.announce();
    assert!(registry.places.is_empty(), "{:?}", registry.places.keys());
    assert!(registry.changed.is_empty());
    assert!(registry.sessions.is_empty());
    // Its code went with its maker.
    assert_eq!(
        code,
        ServerMessage::PairCode {
            code: PairCode::from_number(42),
            expires_in_secs: 600,
        }
    );
    let (conn, _cy) = connection(3);
    let refused = registry.join(
        nick("cy"),
        None,
        &Place::Code(PairCode::from_number(42)),
        fresh(3),
        conn,
        now + TTL,
    );
    assert_eq!(
        refused.map_err(|refusal| refusal.code),
        Err(ErrorCode::WrongCode)
    );
    assert!(registry.places.is_empty());
}
