//! A crowd joining at once: everyone is welcomed, nobody is refused or cut off, and everyone
//! ends up knowing everyone else.
//!
//! Each member writes its `join` together with its upgrade request, as a client on a machine
//! of its own would send it the moment its socket opens: what is measured is the server's
//! backlog, never this test's own (two thousand clients parsing in one process on two cores
//! can lag seconds behind their sockets, which would be the test's lateness, not the
//! members'). A server that refused or cut off any honest member fails the test.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, bail};
use ferry_protocol::{ClientMessage, PeerId, ServerMessage};
use ferry_signaling::{Config, Limits};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{TestServer, join};

/// How long a member waits for everything it needs to hear.
const MEMBER_PATIENCE: Duration = Duration::from_secs(120);

// Both cores: the crowd's clients parse as much JSON as the server writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_joining_at_once_is_all_seen_by_everyone_and_nobody_is_kicked() -> anyhow::Result<()>
{
    const CROWD: usize = 2_000;
    // The test holds both ends of every connection.
    rlimit::increase_nofile_limit(u64::MAX)?;
    let server = TestServer::start(Config {
        limits: Limits {
            max_connections_per_ip: CROWD * 2,
            max_connections: CROWD * 2,
            max_sessions_per_ip: CROWD,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CROWD {
        let addr = server.addr;
        tasks.spawn(async move { crowd_member(addr, i, CROWD).await });
    }
    let mut seen = Vec::new();
    while let Some(member) = tasks.join_next().await {
        seen.push(member??);
    }
    eprintln!("{CROWD} joined and saw everyone in {:?}", started.elapsed());
    assert!(
        seen.iter().all(|&count| count == CROWD - 1),
        "someone missed someone"
    );
    server.stop().await?;
    Ok(())
}

/// One of a crowd: joins, then reads until it knows all `crowd - 1` others; returns how many
/// it knows. A close, an error or any other message before then fails it.
async fn crowd_member(addr: std::net::SocketAddr, i: usize, crowd: usize) -> anyhow::Result<usize> {
    let mut ws = join_with_the_upgrade(addr, &join(&format!("member{i}"), None))
        .await
        .with_context(|| format!("member{i} connecting"))?;
    let mut me = None;
    let mut known = HashSet::<PeerId>::new();
    let deadline = Instant::now() + MEMBER_PATIENCE;
    while known.len() < crowd - 1 {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .with_context(|| format!("member{i} knows {} after {MEMBER_PATIENCE:?}", known.len()))?
            .ok_or_else(|| anyhow::anyhow!("member{i}: the connection ended"))??;
        let Message::Text(text) = frame else {
            bail!("member{i}: got {frame:?}");
        };
        match serde_json::from_str::<ServerMessage>(&text)? {
            ServerMessage::Welcome { id, users, .. } => {
                known.extend(
                    users
                        .into_iter()
                        .map(|user| user.id)
                        .filter(|user| user != &id),
                );
                me = Some(id);
            }
            ServerMessage::UsersChanged { joined, left, away } => {
                known.extend(joined.into_iter().map(|user| user.id));
                for id in left.into_iter().chain(away) {
                    known.remove(&id);
                }
                if let Some(me) = &me {
                    known.remove(me);
                }
            }
            other => bail!("member{i}: got {other:?}"),
        }
    }
    // Stay connected long enough that nobody else sees a departure.
    ws.send(Message::text(serde_json::to_string(
        &ClientMessage::Heartbeat,
    )?))
    .await?;
    Ok(known.len())
}

/// Opens a WebSocket to the server at `addr` with `first` written in the same breath as the
/// upgrade request, so it waits in the server's socket from the start.
async fn join_with_the_upgrade(
    addr: std::net::SocketAddr,
    first: &ClientMessage,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    let mut frame = Frame::message(serde_json::to_vec(first)?, OpCode::Data(Data::Text), true);
    // Every frame from a client is masked; any key will do.
    frame.header_mut().mask = Some([0x5a, 0x17, 0xc3, 0x08]);
    frame.format(&mut request)?;
    stream.write_all(&request).await?;
    let mut response = Vec::new();
    let end = loop {
        let mut buf = [0; 1024];
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            bail!(
                "closed before the upgrade: {}",
                String::from_utf8_lossy(&response)
            );
        }
        response.extend_from_slice(&buf[..read]);
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    if !response.starts_with(b"HTTP/1.1 101") {
        bail!(
            "not upgraded: {}",
            String::from_utf8_lossy(&response[..end])
        );
    }
    let rest = response.split_off(end);
    Ok(WebSocketStream::from_partially_read(stream, rest, Role::Client, None).await)
}

#[tokio::test]
async fn a_join_written_with_the_upgrade_request_is_welcomed() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut ws = join_with_the_upgrade(server.addr, &join("ana", None)).await?;
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await?
        .context("closed")??;
    let tungstenite::Message::Text(text) = frame else {
        bail!("got {frame:?}");
    };
    assert!(matches!(
        serde_json::from_str::<ServerMessage>(&text)?,
        ServerMessage::Welcome { nick, .. } if nick.as_str() == "ana"
    ));
    server.stop().await?;
    Ok(())
}
