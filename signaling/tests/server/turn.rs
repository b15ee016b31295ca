//! TURN with short-lived credentials: each welcome carries credentials the relay can check
//! with the shared secret, they are renewed before they expire, and the secret itself never
//! leaves the server, not even into its logs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_protocol::{IceServer, PeerId, ServerMessage};
use ferry_signaling::{Config, IceConfig, TurnRest, TurnSecret};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::support::{Binary, Client, TestServer};

const SECRET: &str = "s3cr3t-north-wind";

fn turn_config(ttl: Duration, relay_only: bool) -> Config {
    Config {
        ice: IceConfig {
            fixed: Vec::new(),
            turn: Some(TurnRest {
                urls: vec!["turn:10.77.0.1:3478".into()],
                secret: TurnSecret::new(SECRET),
                ttl,
            }),
            relay_only,
        },
        ..Config::default()
    }
}

/// Checks a TURN server entry as coturn would: the user name is `EXPIRY:ID`, the password
/// is the HMAC of the user name under the secret; returns the expiry.
fn check_credential(server: &IceServer, id: &PeerId) -> u64 {
    assert_eq!(server.urls, ["turn:10.77.0.1:3478"]);
    let username = server.username.as_deref().expect("a user name");
    let (expiry, named) = username.split_once(':').expect("EXPIRY:ID");
    assert_eq!(named, id.as_str());
    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(username.as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(server.credential.as_deref(), Some(expected.as_str()));
    expiry.parse().expect("Unix seconds")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn each_welcome_carries_credentials_that_expire_at_now_plus_the_ttl() -> anyhow::Result<()> {
    let ttl = Duration::from_secs(3600);
    let server = TestServer::start(turn_config(ttl, true)).await?;
    let before = unix_now();
    let (_ana, welcome) = Client::join(&server, "ana").await?;
    let after = unix_now();
    assert!(welcome.relay_only);
    let [turn] = welcome.ice_servers.as_slice() else {
        panic!("expected one TURN entry: {:?}", welcome.ice_servers);
    };
    let expiry = check_credential(turn, &welcome.id);
    assert!(
        (before + 3600..=after + 3600).contains(&expiry),
        "expiry {expiry} should be the join time {before}..={after} plus 3600 s"
    );

    // A reconnect is a new welcome with credentials made anew.
    let (_bo, bo) = Client::join(&server, "bo").await?;
    check_credential(&bo.ice_servers[0], &bo.id);
    assert_ne!(bo.ice_servers[0].credential, turn.credential);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_long_session_gets_fresh_credentials_before_they_expire() -> anyhow::Result<()> {
    // Renewal comes at three quarters of the lifetime: after 3 s here.
    let ttl = Duration::from_secs(4);
    let server = TestServer::start(turn_config(ttl, false)).await?;
    let (mut ana, welcome) = Client::join(&server, "ana").await?;
    let first = check_credential(&welcome.ice_servers[0], &welcome.id);
    let started = tokio::time::Instant::now();
    let renewed = ana.recv_heartbeating(Duration::from_millis(500)).await?;
    let ServerMessage::IceServers { ice_servers } = renewed else {
        panic!("expected fresh ICE servers, got {renewed:?}");
    };
    let waited = started.elapsed();
    assert!(waited < ttl, "renewed after {waited:?}, past the expiry");
    let second = check_credential(&ice_servers[0], &welcome.id);
    assert!(
        second > first,
        "the new credentials expire later: {second} > {first}"
    );
    assert!(second <= unix_now() + 4);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_secret_is_in_no_message_and_no_log_line() -> anyhow::Result<()> {
    let server = Binary::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--turn-url",
            "turn:10.77.0.1:3478",
            "--turn-ttl-secs",
            "4",
            "--relay-only",
        ],
        // The most verbose logging there is, and the secret passed the way a service would.
        &[("RUST_LOG", "trace"), ("FERRY_TURN_SECRET", SECRET)],
    )?;
    let addr = server.addr("http").await?;
    let test_server = TestServer::at(addr);
    let (mut ana, welcome) = Client::join(&test_server, "ana").await?;
    let mut seen = format!("{welcome:?}");
    let renewed = ana.recv_heartbeating(Duration::from_millis(500)).await?;
    seen.push_str(&format!("{renewed:?}"));
    assert!(matches!(renewed, ServerMessage::IceServers { .. }));
    assert!(
        !seen.contains(SECRET),
        "a message carries the secret: {seen}"
    );
    let lines = server.stop().await?;
    assert!(lines.len() > 10, "trace logging wrote little: {lines:?}");
    for line in lines {
        assert!(
            !line.contains(SECRET),
            "a log line carries the secret: {line}"
        );
    }

    let (_, help) =
        Binary::run_to_end_with_env(&["--help"], &[("FERRY_TURN_SECRET", SECRET)]).await?;
    assert!(help.contains("--turn-secret"), "{help}");
    assert!(!help.contains(SECRET), "--help shows the secret: {help}");
    Ok(())
}
