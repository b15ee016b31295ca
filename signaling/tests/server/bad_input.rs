//! Bad input of every kind gets its error or its close code, and everyone else keeps working.

use std::time::Duration;

use ferry_protocol::{ErrorCode, ServerMessage};
use ferry_signaling::{Config, Limits};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{Client, PATIENCE, TestServer, arrived, assert_signal, offer, stranger};

fn limits(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::default()
    }
}

#[tokio::test]
async fn malformed_json_and_unknown_types_are_refused_and_the_connection_goes_on()
-> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut client = Client::connect(&server).await?;
    for text in [
        "{",
        "[]",
        "null",
        r#"{"type":"dance"}"#,
        r#"{"nick":"ana"}"#,
        r#"{"type":"join","version":"one","nick":"ana"}"#,
        r#"{"type":"join","version":1,"nick":"ana","token":"not hex"}"#,
    ] {
        client.send_text(text).await?;
        let message = client.expect_error(ErrorCode::MalformedMessage).await?;
        assert!(
            message.starts_with("not a message of this protocol"),
            "{text}: {message}"
        );
    }
    client.join_as("ana", None).await?;
    client
        .send_text(r#"{"type":"heartbeat","extra":true}"#)
        .await?;
    client.send_text(r#"{"type":"dance"}"#).await?;
    client.expect_error(ErrorCode::MalformedMessage).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn binary_frames_are_refused_and_the_connection_goes_on() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    ana.send_frame(Message::binary(vec![1, 2, 3])).await?;
    ana.expect_error(ErrorCode::BinaryNotSupported).await?;
    ana.signal(&stranger(), offer("still here")).await?;
    ana.expect_error(ErrorCode::UnknownPeer).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009_and_others_keep_working() -> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        max_message_bytes: 1024,
        ..Limits::default()
    }))
    .await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, _) = Client::join(&server, "bo").await?;
    ana.recv().await?;

    // Just under the limit passes.
    let fits = offer(&"x".repeat(900));
    bo.signal(&ana.id(), fits.clone()).await?;
    assert_signal(&ana.recv().await?, &bo, "bo", &fits);

    bo.signal(&ana.id(), offer(&"x".repeat(2000))).await?;
    let (before, code) = bo.expect_close().await?;
    assert_eq!(code, 1009);
    match before.as_slice() {
        [ServerMessage::Error { code, message }] => {
            assert_eq!(*code, ErrorCode::MessageTooLarge);
            assert_eq!(message, "messages can have at most 1024 bytes");
        }
        other => panic!("expected one message_too_large error, got {other:?}"),
    }

    let (mut cy, _) = Client::join(&server, "cy").await?;
    cy.signal(&ana.id(), offer("hello")).await?;
    // Ana was told about cy, and nothing about bo, whose session waits for a reconnect.
    assert!(arrived(&ana.recv().await?, &cy.id()));
    assert_signal(&ana.recv().await?, &cy, "cy", &offer("hello"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed_with_1008() -> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        messages_per_sec: 1,
        message_burst: 3,
        max_dropped_messages: 2,
        ..Limits::default()
    }))
    .await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, _) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    let started = Instant::now();
    // The join took one of bo's three tokens.
    for _ in 0..6 {
        bo.signal(&stranger(), offer("flood")).await?;
    }
    bo.expect_error(ErrorCode::UnknownPeer).await?;
    bo.expect_error(ErrorCode::UnknownPeer).await?;
    bo.expect_error(ErrorCode::RateLimited).await?;
    bo.expect_error(ErrorCode::RateLimited).await?;
    let (before, code) = bo.expect_close().await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the test relies on no token being refilled"
    );
    assert_eq!(code, 1008);
    assert!(
        matches!(
            before.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }]
        ),
        "{before:?}"
    );
    // Ana's own allowance is untouched.
    ana.signal(&stranger(), offer("calm")).await?;
    ana.expect_error(ErrorCode::UnknownPeer).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn too_many_connections_from_one_address_get_429() -> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        max_connections_per_ip: 2,
        ..Limits::default()
    }))
    .await?;
    let (first, _) = Client::join(&server, "ana").await?;
    let (mut second, _) = Client::join(&server, "bo").await?;
    match Client::try_connect(&server, None).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = String::from_utf8(response.body().clone().unwrap_or_default())?;
            assert!(body.contains("too many connections"), "{body}");
        }
        Err(other) => panic!("expected 429, got {other}"),
        Ok(_) => panic!("a third connection was accepted"),
    }
    // The two connected users are unaffected.
    second.signal(&stranger(), offer("fine")).await?;
    second.expect_error(ErrorCode::UnknownPeer).await?;

    // Once a connection closes its place is free again; the server counts it down as soon as
    // the connection's task has ended, so retry until then.
    first.close().await?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match Client::try_connect(&server, None).await {
            Ok(mut third) => {
                third.join_as("cy", None).await?;
                break;
            }
            Err(tungstenite::Error::Http(response)) if response.status() == 429 => {
                assert!(
                    Instant::now() < deadline,
                    "the closed connection was never uncounted"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("expected a connection, got {other}"),
        }
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_page_of_another_origin_gets_403() -> anyhow::Result<()> {
    let server = TestServer::start(Config {
        allowed_origins: vec!["http://127.0.0.1:8080".into()],
        ..Config::default()
    })
    .await?;
    match Client::try_connect(&server, Some("http://evil.example")).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8(response.body().clone().unwrap_or_default())?;
            assert!(body.contains("http://evil.example"), "{body}");
            assert!(body.contains("--allowed-origin"), "{body}");
        }
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a foreign origin was accepted"),
    }
    // The app served by this server, a listed origin and non-browser clients are welcome.
    let own = format!("http://{}", server.addr);
    for (i, origin) in [Some(own.as_str()), Some("http://127.0.0.1:8080"), None]
        .into_iter()
        .enumerate()
    {
        let mut client = Client::connect_with_origin(&server, origin).await?;
        client.join_as(&format!("user{i}"), None).await?;
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected_and_others_keep_working() -> anyhow::Result<()>
{
    let server = TestServer::start(limits(Limits {
        outbound_bytes: 64 * 1024,
        messages_per_sec: 100_000,
        message_burst: 100_000,
        ..Limits::default()
    }))
    .await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    // Bo sends what the server must answer, and never reads the answers.
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv().await?;
    let garbage = "{".repeat(100);
    let mut sent = 0;
    // Once the socket buffers between the server and bo are full, bo's queue passes its byte
    // budget and the server drops bo's connection; ana's next signal finds nobody there.
    loop {
        if bo.send_text(&garbage).await.is_err() {
            break;
        }
        sent += 1;
        if sent % 100 == 0 {
            ana.signal(&bo_welcome.id, offer("ping")).await?;
            match tokio::time::timeout(Duration::from_millis(50), ana.recv()).await {
                Ok(reply) => match reply? {
                    ServerMessage::Error {
                        code: ErrorCode::UnknownPeer,
                        ..
                    } => break,
                    other => panic!("expected unknown_peer once bo is gone, got {other:?}"),
                },
                Err(_) => assert!(sent < 200_000, "bo was never disconnected"),
            }
        }
    }
    // Ana is unaffected, and bo's session waits for a reconnect rather than being announced.
    let (mut cy, _) = Client::join(&server, "cy").await?;
    assert!(arrived(&ana.recv().await?, &cy.id()));
    cy.signal(&ana.id(), offer("hi")).await?;
    assert_signal(&ana.recv().await?, &cy, "cy", &offer("hi"));
    server.stop().await?;
    Ok(())
}
