//! A server too busy to read is never the client's fault: what a client sent in time and
//! what waited in the socket while the server could not get to it counts as sent in time, for
//! the join, the silence and the header deadlines alike.
//!
//! Each test runs the server on the test's own single thread and blocks that thread for
//! longer than the deadline after the client has written, which is exactly a server whose
//! backlog keeps it from a connection's task: when the thread is free again, the deadline has
//! passed and the client's bytes are waiting.

use std::time::Duration;

use ferry_protocol::{ClientMessage, ServerMessage};
use ferry_signaling::{Config, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Client, PATIENCE, TestServer, join};

/// The deadline under test; the server is kept from reading for twice as long.
const DEADLINE: Duration = Duration::from_millis(300);

/// Keeps the whole runtime, and so the server, from running for `busy`.
fn server_busy_for(busy: Duration) {
    std::thread::sleep(busy);
}

#[tokio::test]
async fn a_join_that_waited_in_the_socket_while_the_server_was_busy_is_welcomed()
-> anyhow::Result<()> {
    let server = TestServer::start(Config {
        limits: Limits {
            join_timeout: DEADLINE,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let mut client = Client::connect(&server).await?;
    // The connection's task is running and waiting for the join with its deadline set.
    tokio::time::sleep(DEADLINE / 3).await;
    client.send(&join("ana", None)).await?;
    server_busy_for(DEADLINE * 2);
    match client.recv().await? {
        ServerMessage::Welcome { nick, .. } => assert_eq!(nick.as_str(), "ana"),
        other => anyhow::bail!("expected a welcome, got {other:?}"),
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_heartbeat_that_waited_in_the_socket_while_the_server_was_busy_keeps_the_connection()
-> anyhow::Result<()> {
    // Heartbeats every second, so silence is allowed for two seconds.
    let silence = Duration::from_secs(2);
    let server = TestServer::start(Config {
        presence_ttl: Duration::from_secs(4),
        limits: Limits {
            silence_timeout: silence,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    tokio::time::sleep(silence / 2).await;
    ana.send(&ClientMessage::Heartbeat).await?;
    server_busy_for(silence);
    // Still joined: a second join on this connection is refused as already joined, where a
    // connection closed for silence would get its close instead.
    ana.send(&join("ana", None)).await?;
    let answer = ana.recv().await?;
    assert!(
        matches!(
            answer,
            ServerMessage::Error {
                code: ferry_protocol::ErrorCode::AlreadyJoined,
                ..
            }
        ),
        "{answer:?}"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_request_that_waited_in_the_socket_while_the_server_was_busy_is_answered()
-> anyhow::Result<()> {
    let server = TestServer::start(Config {
        limits: Limits {
            header_timeout: DEADLINE,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let mut stream = TcpStream::connect(server.addr).await?;
    tokio::time::sleep(DEADLINE / 3).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    server_busy_for(DEADLINE * 2);
    let mut answer = [0u8; 256];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await?;
    Ok(())
}
