//! `ferry`, the command-line peer, as a scenario runs it: the binary built beside the tests,
//! with a config folder of its own, bound to loopback, printing JSON events that a scenario
//! reads line by line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long a scenario waits for an event of the CLI, or for it to end.
const DEADLINE: Duration = Duration::from_secs(120);

/// One person at a terminal: a nick and a config folder, kept across runs.
#[derive(Debug)]
pub struct Terminal {
    nick: String,
    server: String,
    bind: String,
    config: TempDir,
}

/// A running `ferry`.
#[derive(Debug)]
pub struct Run {
    child: Child,
    events: Lines<BufReader<ChildStdout>>,
    /// Every event seen so far, for failure reports.
    seen: Vec<Value>,
}

/// The `ferry` binary of the same build: `cargo build -p ferry-cli` puts it beside the
/// benchmark's binary, and beside the folder of the test binaries (`deps/`).
///
/// # Errors
/// When it was not built.
pub fn binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the running binary has no folder")?;
    let beside = [Some(dir), dir.parent()];
    beside
        .into_iter()
        .flatten()
        .map(|dir| dir.join("ferry"))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "no ferry beside {}: build it with `cargo build -p ferry-cli`",
                exe.display()
            )
        })
}

impl Terminal {
    /// `nick` at a terminal, using the server at `server` (its page's address).
    ///
    /// # Errors
    /// When no config folder can be made.
    pub fn new(nick: &str, server: &str) -> Result<Self> {
        Ok(Self {
            nick: nick.to_owned(),
            server: server.to_owned(),
            bind: "127.0.0.1".to_owned(),
            config: tempfile::tempdir()?,
        })
    }

    /// The same person with WebRTC bound to `ip` (another address of the namespace).
    #[must_use]
    pub fn bound_to(mut self, ip: std::net::IpAddr) -> Self {
        self.bind = ip.to_string();
        self
    }

    /// Starts `ferry ARGS…` with this person's nick, config and server, JSON events on.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn start(&self, args: &[&str]) -> Result<Run> {
        let mut child = Command::new(binary()?)
            .args(["--json", "--bind", &self.bind, "--nick", &self.nick])
            .arg("--server")
            .arg(&self.server)
            .arg("--config-dir")
            .arg(self.config.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting ferry")?;
        let stdout = child.stdout.take().context("ferry's stdout")?;
        Ok(Run {
            child,
            events: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        })
    }
}

impl Run {
    /// Waits for the event named `name` and returns it.
    ///
    /// # Errors
    /// When the CLI ends first or the deadline passes.
    pub async fn event(&mut self, name: &str) -> Result<Value> {
        self.event_where(name, |_| true).await
    }

    /// Waits for an event named `name` that `fits`, and returns it.
    ///
    /// # Errors
    /// When the CLI ends first or the deadline passes.
    pub async fn event_where(
        &mut self,
        name: &str,
        fits: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let wait = async {
            loop {
                let Some(line) = self.events.next_line().await? else {
                    bail!(
                        "ferry ended before saying {name:?}; it said {:?}",
                        self.seen
                    );
                };
                let event: Value = serde_json::from_str(&line)
                    .with_context(|| format!("ferry printed {line:?}, not JSON"))?;
                self.seen.push(event.clone());
                if event["event"] == name && fits(&event) {
                    return Ok(event);
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .with_context(|| format!("ferry did not say {name:?} within {DEADLINE:?}"))?
    }

    /// Waits for the CLI to end; returns its exit code and every event it printed.
    ///
    /// # Errors
    /// When it does not end in time.
    pub async fn finish(mut self) -> Result<(i32, Vec<Value>)> {
        let wait = async {
            while let Some(line) = self.events.next_line().await? {
                if let Ok(event) = serde_json::from_str(&line) {
                    self.seen.push(event);
                }
            }
            let status = self.child.wait().await?;
            Ok::<_, anyhow::Error>(status.code().unwrap_or(-1))
        };
        let code = tokio::time::timeout(DEADLINE, wait)
            .await
            .context("ferry did not end in time")??;
        Ok((code, self.seen))
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends it SIGINT, as Ctrl-C does.
    ///
    /// # Errors
    /// When it already ended.
    pub fn interrupt(&self) -> Result<()> {
        let pid = self.child.id().context("ferry already ended")?;
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()?;
        ensure!(status.success(), "kill -INT {pid} failed");
        Ok(())
    }
}
