//! WebDriver servers: one chromedriver per test for every Chromium in it, and one geckodriver
//! per Firefox (geckodriver drives a single session). Each starts on a port it picks itself
//! and is killed with every browser it started when dropped — even when the test panics.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// Debian's chromedriver, which matches Debian's Chromium.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// geckodriver from crates.io, which `scripts/setup.sh` installs into cargo's bin folder.
const GECKODRIVER: &str = "geckodriver";

/// How many of a driver's latest lines of output it keeps.
const KEPT_LINES: usize = 2000;

/// A running WebDriver server.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    url: String,
    /// Its latest lines of output, which include what its browser prints.
    output: Arc<Mutex<VecDeque<String>>>,
}

impl Driver {
    /// Starts chromedriver, which serves any number of Chromium sessions.
    pub async fn chromedriver() -> Result<Self> {
        Self::start(CHROMEDRIVER, &["--port=0"], |line| {
            line.split("started successfully on port ")
                .nth(1)?
                .trim_end_matches('.')
                .parse()
                .ok()
        })
        .await
        .context("is chromium-driver installed?")
    }

    /// Starts geckodriver, which serves one Firefox session.
    pub async fn geckodriver() -> Result<Self> {
        let program = std::env::var("GECKODRIVER").unwrap_or_else(|_| GECKODRIVER.to_owned());
        Self::start(&program, &["--port", "0"], |line| {
            line.split("Listening on ")
                .nth(1)?
                .rsplit(':')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .await
        .context("is geckodriver installed (scripts/setup.sh installs it)?")
    }

    /// Starts `program` with `args` and waits for the line `port_in` finds its port in.
    ///
    /// It runs in its own process group, and every browser it launches joins that group, so
    /// dropping this kills them all even if a test never got to close its sessions. Port 0
    /// makes the driver pick a free port itself and print it, which leaves no race between
    /// choosing a port and binding it.
    async fn start(program: &str, args: &[&str], port_in: fn(&str) -> Option<u16>) -> Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let (lines, mut found) = tokio::sync::mpsc::unbounded_channel();
        for output in [
            Box::new(child.stdout.take().context("stdout")?) as Box<dyn AsyncRead + Send + Unpin>,
            Box::new(child.stderr.take().context("stderr")?),
        ] {
            let lines = lines.clone();
            // Whatever the driver prints later must not fill the pipe and block it.
            tokio::spawn(async move {
                let mut reader = BufReader::new(output).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = lines.send(line);
                }
            });
        }
        drop(lines);
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = found.recv().await {
                if let Some(port) = port_in(&line) {
                    return Ok(port);
                }
            }
            bail!("{program} exited before it was listening")
        })
        .await
        .with_context(|| format!("{program} did not start within 30 s"))??;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&output);
        tokio::spawn(async move {
            while let Some(line) = found.recv().await {
                let mut kept = kept.lock().expect("no code panics while holding this lock");
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            output,
        })
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Takes the lines the driver printed since the last call (at most the latest
    /// [`KEPT_LINES`]).
    pub fn take_output(&self) -> Vec<String> {
        self.output
            .lock()
            .expect("no code panics while holding this lock")
            .drain(..)
            .collect()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The process group has the id of its leader; killing the group also ends the browsers.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
