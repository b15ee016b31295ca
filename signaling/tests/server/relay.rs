//! Relaying offers, answers and ICE candidates: only to the addressee, stamped by the server.

use std::sync::Arc;

use ferry_protocol::{ErrorCode, SignalPayload};
use ferry_signaling::{CandidateFilter, Config};

use crate::support::{Client, TestServer, arrived, assert_signal, departed, offer, stranger};

#[tokio::test]
async fn a_signal_reaches_only_its_addressee() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, _) = Client::join(&server, "bo").await?;
    let (mut cy, _) = Client::join(&server, "cy").await?;
    ana.recv().await?;
    ana.recv().await?;
    bo.recv().await?;

    let payloads = [
        offer("ana to bo"),
        SignalPayload::Answer {
            sdp: "v=0 answer".into(),
        },
        SignalPayload::IceCandidate {
            candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        },
        SignalPayload::IceCandidate {
            candidate: "candidate:2 1 udp 1 192.0.2.2 1 typ host".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
        },
    ];
    for payload in &payloads {
        ana.signal(&bo.id(), payload.clone()).await?;
    }
    for payload in &payloads {
        assert_signal(&bo.recv().await?, &ana, "ana", payload);
    }

    // Had cy or ana received any of those, it would arrive before these markers.
    ana.signal(&cy.id(), offer("marker for cy")).await?;
    assert_signal(&cy.recv().await?, &ana, "ana", &offer("marker for cy"));
    bo.signal(&ana.id(), offer("marker for ana")).await?;
    assert_signal(&ana.recv().await?, &bo, "bo", &offer("marker for ana"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_sender_cannot_be_spoofed() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, _) = Client::join(&server, "bo").await?;
    let (cy, _) = Client::join(&server, "cy").await?;
    ana.recv().await?;
    ana.recv().await?;
    bo.recv().await?;
    ana.send_text(&format!(
        r#"{{"type":"signal","to":"{}","from":"{}","from_nick":"cy","payload":{{"kind":"offer","sdp":"v=0 forged"}}}}"#,
        bo.id(),
        cy.id(),
    ))
    .await?;
    assert_signal(&bo.recv().await?, &ana, "ana", &offer("forged"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_signal_to_an_unknown_peer_is_refused() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let nobody = stranger();
    ana.signal(&nobody, offer("into the void")).await?;
    let message = ana.expect_error(ErrorCode::UnknownPeer).await?;
    assert_eq!(message, "nobody with that id is online here");

    // An address that is not even an id is not a message of the protocol.
    ana.send_text(r#"{"type":"signal","to":"bo","payload":{"kind":"offer","sdp":"v=0"}}"#)
        .await?;
    ana.expect_error(ErrorCode::MalformedMessage).await?;

    // A user who left is unknown as well.
    let (bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    bo.close().await?;
    assert!(departed(&ana.recv().await?, &bo_welcome.id));
    ana.signal(&bo_welcome.id, offer("too late")).await?;
    ana.expect_error(ErrorCode::UnknownPeer).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_large_welcome_arrives_whole() -> anyhow::Result<()> {
    // Over 8 KiB of user list, which the server sends in fragments.
    let server = TestServer::start(Config {
        limits: ferry_signaling::Limits {
            max_connections_per_ip: 200,
            max_sessions_per_ip: 200,
            ..ferry_signaling::Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let mut others = Vec::new();
    for i in 0..120 {
        let mut client = Client::connect(&server).await?;
        let welcome = client.join_as(&format!("{i:0>32}"), None).await?;
        others.push((client, welcome.id));
    }
    // Once the last of them is announced, every welcome lists them all.
    let last_id = others[119].1.clone();
    while !arrived(&others[0].0.recv().await?, &last_id) {}
    let (_last, welcome) = Client::join(&server, "last").await?;
    let listed: Vec<_> = welcome.users.iter().map(|user| user.id.clone()).collect();
    let expected: Vec<_> = others.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(listed, expected, "everyone, sorted by nick");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_candidate_filter_rewrites_or_drops_relayed_candidates_and_nothing_else()
-> anyhow::Result<()> {
    // As the emulated wide-area link uses it: one port moved, other candidates dropped.
    let filter = CandidateFilter(Arc::new(|candidate: &str| {
        candidate
            .contains(" 5000 ")
            .then(|| candidate.replace(" 5000 ", " 6000 "))
    }));
    let server = TestServer::start(Config {
        candidates: Some(filter),
        ..Config::default()
    })
    .await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, _) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    let candidate = |line: &str| SignalPayload::IceCandidate {
        candidate: line.into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    };
    ana.signal(
        &bo.id(),
        candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host"),
    )
    .await?;
    ana.signal(
        &bo.id(),
        candidate("candidate:2 1 tcp 1 127.0.0.1 9 typ host"),
    )
    .await?;
    // The end of candidates is no candidate line: it passes as it is, as do descriptions.
    ana.signal(&bo.id(), candidate("")).await?;
    ana.signal(&bo.id(), offer("through the filter")).await?;
    assert_signal(
        &bo.recv().await?,
        &ana,
        "ana",
        &candidate("candidate:1 1 udp 1 127.0.0.1 6000 typ host"),
    );
    assert_signal(&bo.recv().await?, &ana, "ana", &candidate(""));
    assert_signal(&bo.recv().await?, &ana, "ana", &offer("through the filter"));
    server.stop().await?;
    Ok(())
}
