//! One chromedriver process per test, on a port it picks itself, killed with every browser it
//! started when the test ends — even when the test panics.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Debian's chromedriver, which matches Debian's Chromium.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver.
#[derive(Debug)]
pub struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts chromedriver on a free port and returns once it accepts sessions.
    ///
    /// It runs in its own process group, and every Chromium it launches joins that group, so
    /// dropping this kills them all even if a test never got to close its sessions.
    pub async fn start() -> Result<Self> {
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER} (is chromium-driver installed?)"))?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // Port 0 makes chromedriver pick a free port itself and print it, which leaves no race
        // between choosing a port and binding it.
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return Ok(rest.trim_end_matches('.').parse::<u16>()?);
                }
            }
            bail!("chromedriver exited before it was listening")
        })
        .await
        .context("chromedriver did not start within 30 s")??;
        // Whatever chromedriver prints later must not fill the pipe and block it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ChromeDriver {
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
