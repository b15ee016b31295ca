//! A TURN relay for the tests: Debian's coturn, started inside the tests' network namespace
//! with the TURN REST scheme (`use-auth-secret`), and stopped when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

/// Debian's coturn.
const TURNSERVER: &str = "/usr/bin/turnserver";

/// The relay's port. The tests own their network namespace and run one scenario at a time,
/// so the standard port is free, and a fixed one leaves no race between picking and binding.
const PORT: u16 = 3478;

/// How long coturn gets to answer its first STUN request (it takes well under a second).
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// A running coturn.
#[derive(Debug)]
pub struct Relay {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Relay {
    /// Starts coturn on `ip`, checking credentials made with `secret`, and returns once it
    /// answers STUN.
    pub async fn start(ip: Ipv4Addr, secret: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("ferry-turn-").tempdir()?;
        let addr = SocketAddr::from((ip, PORT));
        let child = Command::new(TURNSERVER)
            // No configuration file: Debian's would send the log to syslog.
            .arg("-n")
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
            ])
            .args([
                "--realm=ferry",
                "-L",
                &ip.to_string(),
                "-p",
                &PORT.to_string(),
            ])
            // Only plain TURN over UDP and TCP: no certificates, no telnet console.
            .args(["--no-tls", "--no-dtls", "--no-cli"])
            .args(["--log-file=stdout", "--simple-log"])
            .arg("--pidfile")
            .arg(dir.path().join("turnserver.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {TURNSERVER} (is coturn installed?)"))?;
        let mut relay = Self {
            child,
            addr,
            _dir: dir,
        };
        relay.wait_ready().await?;
        Ok(relay)
    }

    /// The `turn:` URL of the relay.
    pub fn url(&self) -> String {
        format!("turn:{}", self.addr)
    }

    /// Sends STUN binding requests until one is answered.
    async fn wait_ready(&mut self) -> Result<()> {
        let socket = UdpSocket::bind((self.addr.ip(), 0)).await?;
        let started = tokio::time::Instant::now();
        while started.elapsed() < READY_DEADLINE {
            if let Some(status) = self.child.try_wait()? {
                bail!("coturn exited at start-up with {status}");
            }
            socket.send_to(&binding_request(), self.addr).await?;
            let mut answer = [0u8; 512];
            let answered =
                tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut answer)).await;
            // A binding success response has the message type 0x0101.
            if let Ok(Ok(len)) = answered
                && len >= 20
                && answer[..2] == [0x01, 0x01]
            {
                return Ok(());
            }
        }
        bail!(
            "coturn did not answer STUN on {} within {READY_DEADLINE:?}",
            self.addr
        )
    }
}

/// A STUN binding request (RFC 5389): type 0x0001, no attributes, the magic cookie and a
/// transaction id.
fn binding_request() -> [u8; 20] {
    let mut request = [0u8; 20];
    request[..2].copy_from_slice(&[0x00, 0x01]);
    request[4..8].copy_from_slice(&0x2112_A442_u32.to_be_bytes());
    request[8..20].copy_from_slice(b"ferry-tests!");
    request
}
