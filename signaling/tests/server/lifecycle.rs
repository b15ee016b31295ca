//! Starting, stopping and restarting: shutdown closes sockets promptly, the port can be bound
//! again at once, and the binary prints its address and stops on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use ferry_protocol::{ErrorCode, ServerMessage};
use ferry_signaling::Config;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::{Client, PATIENCE, TestServer, http_get};

#[tokio::test]
async fn shutdown_closes_every_socket_promptly_and_the_port_can_be_bound_again()
-> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let addr = server.addr;
    let (mut ana, _) = Client::join(&server, "ana").await?;
    let (mut bo, bo_welcome) = Client::join(&server, "bo").await?;
    let mut idle = Client::connect(&server).await?;
    ana.recv().await?;

    // The clients read concurrently with the shutdown, as browsers would.
    let closes = tokio::spawn(async move {
        let mut codes = Vec::new();
        for client in [&mut ana, &mut bo, &mut idle] {
            codes.push(client.expect_close().await);
        }
        codes
    });
    let took = server.stop().await?;
    assert!(
        took < Duration::from_secs(1),
        "serve took {took:?} to return"
    );
    for close in closes.await? {
        let (before, code) = close?;
        assert_eq!(code, 1001);
        assert!(
            matches!(before.as_slice(), [ServerMessage::Error { code: ErrorCode::SessionEnded, message }] if message.contains("shutting down")),
            "{before:?}"
        );
    }

    // The same port again, at once; the old server's sessions are gone.
    let server = TestServer::start_on(addr, Config::default()).await?;
    assert_eq!(server.addr, addr);
    let mut bo = Client::connect(&server).await?;
    let welcome = bo.join_as("bo", Some(bo_welcome.token)).await?;
    assert!(!welcome.resumed);
    assert!(welcome.users.is_empty());
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_does_not_wait_for_clients_that_do_not_answer() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    // These clients never read again, so they never answer the close frame.
    let (_ana, _) = Client::join(&server, "ana").await?;
    let (_bo, _) = Client::join(&server, "bo").await?;
    let took = server.stop().await?;
    assert!(
        took < Duration::from_secs(1),
        "serve took {took:?} to return"
    );
    Ok(())
}

#[tokio::test]
async fn the_binary_prints_its_address_and_stops_on_sigterm() -> anyhow::Result<()> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-signaling"))
        .args(["--listen", "127.0.0.1:0", "--presence-ttl-secs", "60"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(stdout).read_line(&mut line)).await??;
    let addr = line
        .strip_prefix("Ferry is running at http://")
        .and_then(|rest| rest.strip_suffix("/ — open it in two browser tabs.\n"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: std::net::SocketAddr = addr.parse()?;
    assert_ne!(addr.port(), 0, "the real port is printed");

    let health = http_get(addr, "/healthz").await?;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    let pid = child.id().expect("the child is running").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await?;
    assert!(killed.success());
    let status = tokio::time::timeout(PATIENCE, child.wait()).await??;
    assert!(status.success(), "exited with {status}");
    Ok(())
}
