//! Exact-JSON tests: every message's wire shape is written out here, so a change to the
//! contract shows up as a failing test on both the server's and the app's side.

use ferry_protocol::{
    ClientMessage, ClusterMessage, DigestHex, ErrorCode, FileMeta, HeldFile, IceServer, LobbyScope,
    Nick, PROTOCOL_VERSION, PairCode, PeerId, Place, RoomId, ServerInfo, ServerMessage,
    SessionToken, SignalPayload, TransferId, TransferMessage, UserInfo,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Asserts that `message` serializes to exactly `expected` and parses back to itself.
fn check<T>(message: T, expected: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let expected: Value = serde_json::from_str(expected).expect("the expected JSON is valid");
    let actual = serde_json::to_value(&message).expect("serializes");
    assert_eq!(actual, expected);
    let parsed: T = serde_json::from_value(expected).expect("parses back");
    assert_eq!(parsed, message);
}

fn peer(byte: u8) -> PeerId {
    PeerId::from_random_bytes([byte; 16])
}

fn nick(raw: &str) -> Nick {
    Nick::new(raw).unwrap()
}

const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[test]
fn join_without_and_with_token() {
    check(
        ClientMessage::Join {
            version: PROTOCOL_VERSION,
            nick: "ana".into(),
            token: None,
            place: Place::Lobby,
        },
        r#"{"type":"join","version":2,"nick":"ana"}"#,
    );
    check(
        ClientMessage::Join {
            version: PROTOCOL_VERSION,
            nick: "ana".into(),
            token: None,
            place: Place::Room(RoomId::from_random_bytes([0xcc; 16])),
        },
        &format!(
            r#"{{"type":"join","version":2,"nick":"ana","place":{{"room":"{}"}}}}"#,
            "cc".repeat(16)
        ),
    );
    check(
        ClientMessage::Join {
            version: PROTOCOL_VERSION,
            nick: "ana".into(),
            token: None,
            place: Place::Code(PairCode::from_number(123_456)),
        },
        r#"{"type":"join","version":2,"nick":"ana","place":{"code":"123456"}}"#,
    );
    let token = SessionToken::from_random_bytes([0x11; 32]);
    check(
        ClientMessage::Join {
            version: 1,
            nick: "ana".into(),
            token: Some(token),
            place: Place::Lobby,
        },
        &format!(
            r#"{{"type":"join","version":1,"nick":"ana","token":"{}"}}"#,
            "11".repeat(32)
        ),
    );
}

#[test]
fn heartbeat_and_leave() {
    check(ClientMessage::Heartbeat, r#"{"type":"heartbeat"}"#);
    check(ClientMessage::Leave, r#"{"type":"leave"}"#);
    check(ClientMessage::MakeCode, r#"{"type":"make_code"}"#);
}

#[test]
fn pairing_codes_and_server_info() {
    check(
        ServerMessage::PairCode {
            code: PairCode::from_number(42),
            expires_in_secs: 600,
        },
        r#"{"type":"pair_code","code":"000042","expires_in_secs":600}"#,
    );
    check(
        ServerInfo {
            lobby: LobbyScope::Network,
            room_size: 20,
        },
        r#"{"lobby":"network","room_size":20}"#,
    );
}

#[test]
fn client_signals() {
    check(
        ClientMessage::Signal {
            to: peer(0xbb),
            payload: SignalPayload::Offer { sdp: "v=0".into() },
            lane: 0,
        },
        &format!(r#"{{"type":"signal","to":"{ID_B}","payload":{{"kind":"offer","sdp":"v=0"}}}}"#),
    );
    check(
        ClientMessage::Signal {
            to: peer(0xbb),
            payload: SignalPayload::Answer { sdp: "v=0".into() },
            lane: 3,
        },
        &format!(
            r#"{{"type":"signal","to":"{ID_B}","payload":{{"kind":"answer","sdp":"v=0"}},"lane":3}}"#
        ),
    );
    check(
        ClientMessage::Signal {
            to: peer(0xbb),
            payload: SignalPayload::IceCandidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
            lane: 0,
        },
        &format!(
            r#"{{"type":"signal","to":"{ID_B}","payload":{{"kind":"ice_candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdp_mid":"0","sdp_m_line_index":0}}}}"#
        ),
    );
}

#[test]
fn welcome() {
    check(
        ServerMessage::Welcome {
            id: peer(0xaa),
            nick: nick("ana"),
            token: SessionToken::from_random_bytes([0x22; 32]),
            resumed: false,
            users: vec![UserInfo {
                id: peer(0xbb),
                nick: nick("bo"),
            }],
            ice_servers: vec![IceServer {
                urls: vec!["turn:turn.example:3478".into()],
                username: Some("u".into()),
                credential: Some("c".into()),
            }],
            relay_only: true,
            heartbeat_secs: 30,
            room: None,
        },
        &format!(
            r#"{{"type":"welcome","id":"{ID_A}","nick":"ana","token":"{}","resumed":false,
                "users":[{{"id":"{ID_B}","nick":"bo"}}],
                "ice_servers":[{{"urls":["turn:turn.example:3478"],"username":"u","credential":"c"}}],
                "relay_only":true,
                "heartbeat_secs":30}}"#,
            "22".repeat(32)
        ),
    );
}

#[test]
fn a_welcome_from_a_server_without_relay_only_means_direct_paths_are_allowed() {
    let parsed: ServerMessage = serde_json::from_str(&format!(
        r#"{{"type":"welcome","id":"{ID_A}","nick":"ana","token":"{}","resumed":true,
            "users":[],"ice_servers":[],"heartbeat_secs":30}}"#,
        "22".repeat(32)
    ))
    .unwrap();
    assert!(matches!(
        parsed,
        ServerMessage::Welcome {
            relay_only: false,
            ..
        }
    ));
}

#[test]
fn fresh_ice_servers() {
    check(
        ServerMessage::IceServers {
            ice_servers: vec![IceServer {
                urls: vec!["turns:turn.example:5349".into()],
                username: Some("1700000000:aaaa".into()),
                credential: Some("c2VjcmV0".into()),
            }],
        },
        r#"{"type":"ice_servers","ice_servers":[{"urls":["turns:turn.example:5349"],"username":"1700000000:aaaa","credential":"c2VjcmV0"}]}"#,
    );
}

#[test]
fn presence_changes() {
    check(
        ServerMessage::UsersChanged {
            joined: vec![UserInfo {
                id: peer(0xbb),
                nick: nick("bo"),
            }],
            left: vec![peer(0xaa)],
            away: Vec::new(),
        },
        &format!(
            r#"{{"type":"users_changed","joined":[{{"id":"{ID_B}","nick":"bo"}}],"left":["{ID_A}"]}}"#
        ),
    );
    check(
        ServerMessage::UsersChanged {
            joined: Vec::new(),
            left: vec![peer(0xbb)],
            away: Vec::new(),
        },
        &format!(r#"{{"type":"users_changed","left":["{ID_B}"]}}"#),
    );
    check(
        ServerMessage::UsersChanged {
            joined: Vec::new(),
            left: Vec::new(),
            away: vec![peer(0xaa)],
        },
        &format!(r#"{{"type":"users_changed","away":["{ID_A}"]}}"#),
    );
}

#[test]
fn relayed_signal_names_its_sender() {
    check(
        ServerMessage::Signal {
            from: peer(0xaa),
            from_nick: nick("ana"),
            payload: SignalPayload::Answer { sdp: "v=0".into() },
            lane: 0,
        },
        &format!(
            r#"{{"type":"signal","from":"{ID_A}","from_nick":"ana","payload":{{"kind":"answer","sdp":"v=0"}}}}"#
        ),
    );
    check(
        ServerMessage::Signal {
            from: peer(0xaa),
            from_nick: nick("ana"),
            payload: SignalPayload::Answer { sdp: "v=0".into() },
            lane: 2,
        },
        &format!(
            r#"{{"type":"signal","from":"{ID_A}","from_nick":"ana","payload":{{"kind":"answer","sdp":"v=0"}},"lane":2}}"#
        ),
    );
}

#[test]
fn errors() {
    check(
        ServerMessage::Error {
            code: ErrorCode::NickTaken,
            message: "someone online is already called ana".into(),
        },
        r#"{"type":"error","code":"nick_taken","message":"someone online is already called ana"}"#,
    );
    let codes = [
        (ErrorCode::UnsupportedVersion, "unsupported_version"),
        (ErrorCode::InvalidNick, "invalid_nick"),
        (ErrorCode::NickTaken, "nick_taken"),
        (ErrorCode::InvalidToken, "invalid_token"),
        (ErrorCode::NotJoined, "not_joined"),
        (ErrorCode::AlreadyJoined, "already_joined"),
        (ErrorCode::MalformedMessage, "malformed_message"),
        (ErrorCode::BinaryNotSupported, "binary_not_supported"),
        (ErrorCode::MessageTooLarge, "message_too_large"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::UnknownPeer, "unknown_peer"),
        (ErrorCode::PeerBusy, "peer_busy"),
        (ErrorCode::TooManySessions, "too_many_sessions"),
        (ErrorCode::SessionEnded, "session_ended"),
        (ErrorCode::NoLobby, "no_lobby"),
        (ErrorCode::RoomFull, "room_full"),
        (ErrorCode::WrongCode, "wrong_code"),
        (ErrorCode::TooManyTries, "too_many_tries"),
        (ErrorCode::NoCode, "no_code"),
        (ErrorCode::Unavailable, "unavailable"),
    ];
    for (code, wire) in codes {
        check(code, &format!("\"{wire}\""));
    }
}

#[test]
fn invalid_ids_and_nicks_do_not_parse() {
    let bad_to = r#"{"type":"signal","to":"../etc","payload":{"kind":"offer","sdp":""}}"#;
    assert!(serde_json::from_str::<ClientMessage>(bad_to).is_err());
    let bad_nick = format!(r#"{{"type":"users_changed","joined":[{{"id":"{ID_B}","nick":" "}}]}}"#);
    assert!(serde_json::from_str::<ServerMessage>(&bad_nick).is_err());
    let unknown = r#"{"type":"teleport"}"#;
    assert!(serde_json::from_str::<ClientMessage>(unknown).is_err());
}

#[test]
fn a_version_1_peer_is_recognised_by_what_it_leaves_out() {
    let id = "33".repeat(16);
    let offer: TransferMessage =
        serde_json::from_str(&format!(r#"{{"type":"offer","id":"{id}","files":[]}}"#)).unwrap();
    assert!(matches!(offer, TransferMessage::Offer { version: 1, .. }));
    let accept: TransferMessage = serde_json::from_str(r#"{"type":"accept"}"#).unwrap();
    assert_eq!(accept, TransferMessage::Accept { version: 1 });
}

#[test]
fn digests_give_back_their_bytes() {
    let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
    assert_eq!(DigestHex::from_digest(bytes).to_bytes(), bytes);
}

#[test]
fn transfer_messages() {
    let id = TransferId::from_random_bytes([0x33; 16]);
    check(
        TransferMessage::Offer {
            id,
            files: vec![FileMeta {
                name: "holiday ü 🚢.mov".into(),
                path: String::new(),
                size: 1_200_000_000,
                mime: "video/quicktime".into(),
            }],
            version: 2,
            empty_folders: Vec::new(),
        },
        &format!(
            r#"{{"type":"offer","id":"{}","files":[{{"name":"holiday ü 🚢.mov","size":1200000000,"mime":"video/quicktime"}}],"version":2}}"#,
            "33".repeat(16)
        ),
    );
    check(
        TransferMessage::Offer {
            id: TransferId::from_random_bytes([0x44; 16]),
            files: vec![FileMeta {
                name: "a.jpg".into(),
                path: "Holiday/day 1".into(),
                size: 3,
                mime: "image/jpeg".into(),
            }],
            version: 4,
            empty_folders: vec!["Holiday/empty".into()],
        },
        &format!(
            r#"{{"type":"offer","id":"{}","files":[{{"name":"a.jpg","path":"Holiday/day 1","size":3,"mime":"image/jpeg"}}],"version":4,"empty_folders":["Holiday/empty"]}}"#,
            "44".repeat(16)
        ),
    );
    check(
        TransferMessage::Piece {
            text: r#"{"type":"off"#.into(),
            last: false,
        },
        r#"{"type":"piece","text":"{\"type\":\"off","last":false}"#,
    );
    check(
        TransferMessage::Accept { version: 2 },
        r#"{"type":"accept","version":2}"#,
    );
    check(
        TransferMessage::Block {
            file: 1,
            index: 4095,
            digest: DigestHex::from_digest([0xab; 32]),
        },
        &format!(
            r#"{{"type":"block","file":1,"index":4095,"digest":"{}"}}"#,
            "ab".repeat(32)
        ),
    );
    check(
        TransferMessage::Resend { file: 1, block: 7 },
        r#"{"type":"resend","file":1,"block":7}"#,
    );
    check(TransferMessage::Decline, r#"{"type":"decline"}"#);
    check(TransferMessage::Cancel, r#"{"type":"cancel"}"#);
    check(
        TransferMessage::FileEnd {
            index: 2,
            digest: DigestHex::from_digest([0xcd; 32]),
        },
        &format!(
            r#"{{"type":"file_end","index":2,"digest":"{}"}}"#,
            "cd".repeat(32)
        ),
    );
    check(
        TransferMessage::Stored {
            file: 0,
            block: 5120,
        },
        r#"{"type":"stored","file":0,"block":5120}"#,
    );
    check(
        TransferMessage::Resume {
            id: TransferId::from_random_bytes([0x44; 16]),
            version: 3,
        },
        &format!(
            r#"{{"type":"resume","id":"{}","version":3}}"#,
            "44".repeat(16)
        ),
    );
    check(
        TransferMessage::Resumed {
            files: vec![
                HeldFile {
                    complete: true,
                    blocks: vec![[0, 3]],
                    digest: DigestHex::from_digest([0x01; 32]),
                },
                HeldFile {
                    complete: false,
                    blocks: vec![[0, 2], [5, 9]],
                    digest: DigestHex::from_digest([0x02; 32]),
                },
            ],
        },
        &format!(
            r#"{{"type":"resumed","files":[{{"complete":true,"blocks":[[0,3]],"digest":"{}"}},{{"complete":false,"blocks":[[0,2],[5,9]],"digest":"{}"}}]}}"#,
            "01".repeat(32),
            "02".repeat(32)
        ),
    );
    check(
        TransferMessage::Probe {
            id: TransferId::from_random_bytes([0x45; 16]),
            version: 2,
        },
        &format!(
            r#"{{"type":"probe","id":"{}","version":2}}"#,
            "45".repeat(16)
        ),
    );
    check(
        TransferMessage::Holds {
            files: vec![HeldFile {
                complete: true,
                blocks: vec![[0, 1]],
                digest: DigestHex::from_digest([0x03; 32]),
            }],
        },
        &format!(
            r#"{{"type":"holds","files":[{{"complete":true,"blocks":[[0,1]],"digest":"{}"}}]}}"#,
            "03".repeat(32)
        ),
    );
    check(
        TransferMessage::FileVerified { index: 2 },
        r#"{"type":"file_verified","index":2}"#,
    );
    check(
        TransferMessage::Failed {
            reason: "integrity check failed".into(),
        },
        r#"{"type":"failed","reason":"integrity check failed"}"#,
    );
}

#[test]
fn texts_and_verifications_have_exact_shapes() {
    check(
        TransferMessage::Text {
            text: "the door code is 4711".into(),
        },
        r#"{"type":"text","text":"the door code is 4711"}"#,
    );
    check(TransferMessage::Delivered, r#"{"type":"delivered"}"#);
    check(TransferMessage::Hello, r#"{"type":"hello"}"#);
    check(
        TransferMessage::VerifyCommit {
            commitment: DigestHex::from_digest([0x0a; 32]),
        },
        &format!(
            r#"{{"type":"verify_commit","commitment":"{}"}}"#,
            "0a".repeat(32)
        ),
    );
    check(
        TransferMessage::VerifyNonce {
            nonce: DigestHex::from_digest([0x0b; 32]),
        },
        &format!(r#"{{"type":"verify_nonce","nonce":"{}"}}"#, "0b".repeat(32)),
    );
    check(
        TransferMessage::VerifyReveal {
            nonce: DigestHex::from_digest([0x0c; 32]),
        },
        &format!(
            r#"{{"type":"verify_reveal","nonce":"{}"}}"#,
            "0c".repeat(32)
        ),
    );
    check(
        TransferMessage::VerifyResult { matched: false },
        r#"{"type":"verify_result","matched":false}"#,
    );
    // A nonce that is not 32 bytes of lowercase hex is refused, not truncated or padded.
    let short = format!(r#"{{"type":"verify_nonce","nonce":"{}"}}"#, "0b".repeat(31));
    assert!(serde_json::from_str::<TransferMessage>(&short).is_err());
}

#[test]
fn file_sizes_beyond_four_gibibytes_survive() {
    let meta = FileMeta {
        name: "big.iso".into(),
        path: String::new(),
        size: 5 * 1024 * 1024 * 1024,
        mime: String::new(),
    };
    let json = serde_json::to_string(&meta).unwrap();
    assert_eq!(serde_json::from_str::<FileMeta>(&json).unwrap(), meta);
}

#[test]
fn what_instances_tell_each_other() {
    check(
        ClusterMessage::Listed {
            instance: "i1".into(),
            place: "room:cccccccccccccccccccccccccccccccc".into(),
            id: peer(0xaa),
            nick: nick("ana"),
        },
        &format!(
            r#"{{"type":"listed","instance":"i1","place":"room:cccccccccccccccccccccccccccccccc","id":"{ID_A}","nick":"ana"}}"#
        ),
    );
    check(
        ClusterMessage::Away {
            instance: "i1".into(),
            id: peer(0xaa),
        },
        &format!(r#"{{"type":"away","instance":"i1","id":"{ID_A}"}}"#),
    );
    check(
        ClusterMessage::Left {
            instance: "i1".into(),
            id: peer(0xbb),
        },
        &format!(r#"{{"type":"left","instance":"i1","id":"{ID_B}"}}"#),
    );
    check(
        ClusterMessage::Signal {
            from: peer(0xaa),
            from_nick: nick("ana"),
            place: "lobby".into(),
            to: peer(0xbb),
            payload: SignalPayload::Answer { sdp: "v=0".into() },
            lane: 1,
        },
        &format!(
            r#"{{"type":"signal","from":"{ID_A}","from_nick":"ana","place":"lobby","to":"{ID_B}","payload":{{"kind":"answer","sdp":"v=0"}},"lane":1}}"#
        ),
    );
}
