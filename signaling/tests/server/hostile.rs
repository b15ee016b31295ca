//! The open internet: connections that say nothing, crowds from one address, a full server,
//! lookalike nicks, registrations that are not one's own, broken frames and long garbage.
//! Deadlines are set short here so the tests wait for them, not for the defaults.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_protocol::{ErrorCode, ServerMessage};
use ferry_signaling::{Config, HttpLimits, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::support::{
    Client, PATIENCE, TestServer, http_get, http_get_from, join, read_until_closed, tcp_from,
};

/// A deadline short enough to wait for, long enough that a busy machine meets it.
const SHORT: Duration = Duration::from_millis(400);

const ANOTHER_MACHINE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

fn limits(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::default()
    }
}

/// Writes `request` to a fresh connection and expects the server to close it, no sooner
/// than `deadline` after the last byte was written.
async fn closed_after(addr: SocketAddr, request: &[u8], deadline: Duration) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let written = Instant::now();
    read_until_closed(&mut stream).await?;
    let waited = written.elapsed();
    assert!(
        waited >= deadline.mul_f32(0.9),
        "closed after {waited:?}, before the deadline"
    );
    Ok(())
}

#[tokio::test]
async fn connections_that_say_nothing_or_never_finish_their_headers_are_closed()
-> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        header_timeout: SHORT,
        ..Limits::default()
    }))
    .await?;
    closed_after(server.addr, b"", SHORT).await?;
    closed_after(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", SHORT).await?;

    // An idle keep-alive connection is closed the same way after its request was answered.
    let mut stream = TcpStream::connect(server.addr).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let mut answer = [0u8; 256];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut answer)).await??;
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let idle_from = Instant::now();
    read_until_closed(&mut stream).await?;
    assert!(idle_from.elapsed() >= SHORT.mul_f32(0.9));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_upgraded_socket_that_never_joins_is_closed_even_if_it_pings() -> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        join_timeout: SHORT,
        ..Limits::default()
    }))
    .await?;
    let started = Instant::now();
    let mut client = Client::connect(&server).await?;
    client
        .send_frame(tungstenite::Message::Ping(vec![1].into()))
        .await?;
    let (before, code) = client.expect_close().await?;
    assert_eq!(code, 1008);
    assert!(started.elapsed() >= SHORT.mul_f32(0.9));
    assert!(
        matches!(before.as_slice(), [ServerMessage::Error { code: ErrorCode::NotJoined, message }] if message.contains("join within")),
        "{before:?}"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_joined_socket_that_falls_silent_is_closed_and_its_session_waits() -> anyhow::Result<()> {
    // Heartbeats every second; silence is allowed for two of them.
    let server = TestServer::start(Config {
        presence_ttl: Duration::from_secs(6),
        limits: Limits {
            silence_timeout: Duration::from_secs(2),
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let heartbeat = Duration::from_millis(300);
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    ana.recv_heartbeating(heartbeat).await?;
    let started = Instant::now();
    let (_, code) = bo.expect_close().await?;
    assert_eq!(code, 1008);
    let silent = started.elapsed();
    assert!(
        silent >= Duration::from_millis(1800),
        "closed after {silent:?}"
    );

    // The session waits for a reconnect: bo reclaims it and ana heard of no departure.
    let mut bo = Client::connect(&server).await?;
    let resumed = bo.join_as("bo", Some(bo_welcome.token)).await?;
    assert!(resumed.resumed);
    bo.signal(&ana.id(), crate::support::offer("back")).await?;
    let next = ana.recv_heartbeating(heartbeat).await?;
    assert!(
        matches!(next, ServerMessage::Signal { .. }),
        "ana heard {next:?} before bo's signal"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_plain_connections() -> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        max_connections_per_ip: 3,
        ..Limits::default()
    }))
    .await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await?);
    }
    let mut refused = TcpStream::connect(server.addr).await?;
    let answer = String::from_utf8(read_until_closed(&mut refused).await?)?;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // Another machine is not held back by the first one's connections.
    let health = http_get_from(ANOTHER_MACHINE, server.addr, "/healthz").await?;
    assert_eq!(health.body, "ok");
    drop(held);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_full_server_refuses_with_503_and_keeps_room_for_health_probes() -> anyhow::Result<()> {
    // Twenty places, ten of them kept from new WebSockets.
    let server = TestServer::start(limits(Limits {
        max_connections: 20,
        ..Limits::default()
    }))
    .await?;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(TcpStream::connect(server.addr).await?);
    }
    match Client::try_connect(&server, None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        Err(other) => panic!("expected 503, got {other}"),
        Ok(_) => panic!("a WebSocket took one of the kept places"),
    }
    assert_eq!(http_get(server.addr, "/healthz").await?.body, "ok");
    for _ in 0..10 {
        held.push(TcpStream::connect(server.addr).await?);
    }
    let mut refused = TcpStream::connect(server.addr).await?;
    let answer = String::from_utf8(read_until_closed(&mut refused).await?)?;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(held);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn lookalikes_of_a_held_nick_are_taken_over_websocket_and_the_classic_api()
-> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (_anna, _) = Client::join(&server, "anna").await?;
    let mut other = Client::connect(&server).await?;
    for lookalike in [
        "Anna",
        "ANNA",
        "\u{430}nn\u{430}",
        "ａｎｎａ",
        "ann\u{0430}",
    ] {
        other.send(&join(lookalike, None)).await?;
        other.expect_error(ErrorCode::NickTaken).await?;
        let query = format!(
            "/?username={}&identity=x1",
            form_urlencoded::byte_serialize(lookalike.as_bytes()).collect::<String>()
        );
        let answer = http_get(server.addr, &query).await?;
        assert!(
            answer.body.contains("<update>false</update>"),
            "{lookalike}"
        );
    }
    // What was typed is what others see.
    let (_, welcome) = Client::join(&server, "René").await?;
    assert!(
        welcome
            .users
            .iter()
            .any(|user| user.nick.as_str() == "anna")
    );
    http_get(server.addr, "/?username=ren%C3%A9x&identity=r1").await?;
    let decomposed = http_get(server.addr, "/?username=rene%CC%81&identity=r2").await?;
    assert!(decomposed.body.contains("<update>false</update>"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn only_the_address_that_registered_a_nick_can_remove_it() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mine = http_get(server.addr, "/?username=ana&identity=a1").await?;
    assert!(mine.body.contains("<update>true</update>"));
    for query in ["/?username=ana&identity=0", "/?username=ANA&identity=0"] {
        let theirs = http_get_from(ANOTHER_MACHINE, server.addr, query).await?;
        assert!(theirs.body.contains("<update>false</update>"), "{query}");
    }
    let taken = http_get_from(ANOTHER_MACHINE, server.addr, "/?username=ana&identity=b2").await?;
    assert!(taken.body.contains("<update>false</update>"));
    let still = http_get(server.addr, "/?friends=ana").await?;
    assert!(
        still.body.contains("<identity>a1</identity>"),
        "{}",
        still.body
    );
    let removed = http_get(server.addr, "/?username=ana&identity=0").await?;
    assert!(removed.body.contains("<update>true</update>"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_classic_api_is_limited_in_rate_and_in_registrations() -> anyhow::Result<()> {
    let server = TestServer::start(limits(Limits {
        http_requests_per_sec: 1,
        http_request_burst: 4,
        http_registrations: HttpLimits {
            per_ip: 2,
            total: 100,
        },
        ..Limits::default()
    }))
    .await?;
    let mut bodies = Vec::new();
    for nick in ["a", "b", "c"] {
        let answer = http_get(server.addr, &format!("/?username={nick}&identity={nick}1")).await?;
        bodies.push(answer.body);
    }
    assert!(bodies[0].contains("true") && bodies[1].contains("true"));
    assert!(
        bodies[2].contains("<update>false</update>"),
        "a third registration"
    );
    http_get(server.addr, "/?listUsers=true").await?;
    let flood = http_get(server.addr, "/?listUsers=true").await?;
    assert_eq!(flood.status, 429);
    // Another address has its own allowance.
    let other = http_get_from(ANOTHER_MACHINE, server.addr, "/?listUsers=true").await?;
    assert_eq!(other.status, 200);
    server.stop().await?;
    Ok(())
}

/// Opens a WebSocket by hand and returns the stream, for frames no client library sends.
async fn raw_websocket(server: &TestServer) -> anyhow::Result<TcpStream> {
    let mut stream = tcp_from(IpAddr::from([127, 0, 0, 1]), server.addr).await?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut byte)).await??;
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    Ok(stream)
}

/// A masked client frame with `opcode` and `payload` (under 126 bytes).
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![
        0x80 | opcode,
        0x80 | u8::try_from(payload.len()).expect("short"),
    ];
    frame.extend_from_slice(&mask);
    frame.extend(
        payload
            .iter()
            .zip(mask.iter().cycle())
            .map(|(byte, key)| byte ^ key),
    );
    frame
}

/// Sends `frame` and returns the close code the server answers with.
async fn close_code_for(server: &TestServer, frame: &[u8]) -> anyhow::Result<u16> {
    let mut stream = raw_websocket(server).await?;
    stream.write_all(frame).await?;
    let received = read_until_closed(&mut stream).await?;
    // The server's close frame: 0x88, a length, then the code in two bytes.
    let at = received
        .iter()
        .position(|&byte| byte == 0x88)
        .expect("a close frame");
    Ok(u16::from_be_bytes([received[at + 2], received[at + 3]]))
}

#[tokio::test]
async fn protocol_violations_get_the_close_codes_of_rfc_6455() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    // A reserved opcode is a protocol error: 1002.
    assert_eq!(
        close_code_for(&server, &masked_frame(0x3, b"x")).await?,
        1002
    );
    // A text message that is not UTF-8: 1007.
    assert_eq!(
        close_code_for(&server, &masked_frame(0x1, &[0xff, 0xfe])).await?,
        1007
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_error_quotes_no_more_than_a_short_prefix_of_the_input() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut client = Client::connect(&server).await?;
    let garbage = format!(r#"{{"type":"{}"}}"#, "z".repeat(60_000));
    client.send_text(&garbage).await?;
    let message = client.expect_error(ErrorCode::MalformedMessage).await?;
    assert!(message.len() < 400, "{} bytes quoted back", message.len());
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_http_1_0_upgrade_is_a_clear_400() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let mut stream = TcpStream::connect(server.addr).await?;
    stream
        .write_all(
            b"GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await?;
    let answer = String::from_utf8(read_until_closed(&mut stream).await?)?;
    assert!(answer.starts_with("HTTP/1.0 400"), "{answer}");
    assert!(answer.contains("needs HTTP/1.1"), "{answer}");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_dns_rebinding_page_cannot_open_a_websocket() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    // The page's own name, in both its origin and the request's host, is not the server's.
    let evil = format!("http://evil.example:{}", server.addr.port());
    match Client::try_connect_as(
        &server,
        Some(&evil),
        Some(&format!("evil.example:{}", server.addr.port())),
    )
    .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a rebinding page was let in"),
    }
    // The server's own origin, as the app served from it has.
    let own = format!("http://{}", server.addr);
    let mut client = Client::connect_with_origin(&server, Some(&own)).await?;
    client.join_as("ana", None).await?;
    server.stop().await?;
    Ok(())
}
