//! Ferry's signaling server, run in-process through its library API and serving the
//! trunk-built app, so a test can stop it and start it again on the same port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

/// How long a stopped server may take to return from `serve`.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The server, running or stopped, always at the same address.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    static_dir: PathBuf,
    running: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Where `trunk build` puts the app: `<repo>/dist`.
pub fn default_static_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist"))
}

impl Server {
    /// Starts the server on a free port of 127.0.0.1, serving the built app from `<repo>/dist`.
    pub async fn start() -> Result<Self> {
        Self::start_serving(default_static_dir()).await
    }

    /// Starts the server on a free port of 127.0.0.1, serving the built app from `static_dir`,
    /// so a benchmark can compare builds kept side by side.
    pub async fn start_serving(static_dir: PathBuf) -> Result<Self> {
        ensure!(
            static_dir.join("index.html").is_file(),
            "{} has no index.html: the end-to-end tests need the app built first; run the \
             README's test command (./test.sh), which builds it with `trunk build --release`",
            static_dir.display()
        );
        let listener = ferry_signaling::bind(([127, 0, 0, 1], 0).into())
            .await
            .context("binding the signaling server")?;
        let addr = listener.local_addr()?;
        let server = Self {
            addr,
            static_dir,
            running: Mutex::new(None),
        };
        server.serve(listener).await;
        Ok(server)
    }

    /// The app's address, as a user types it into the browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops the server: every WebSocket is closed, and nothing listens on the port any more.
    pub async fn stop(&self) -> Result<()> {
        let Some(running) = self.running.lock().await.take() else {
            bail!("the server is already stopped");
        };
        // The receiver gone means `serve` already returned, which the join below reports.
        let _ = running.stop.send(());
        tokio::time::timeout(STOP_DEADLINE, running.task)
            .await
            .with_context(|| format!("the server did not stop within {STOP_DEADLINE:?}"))?
            .context("the server task panicked")?
            .context("the server failed")?;
        Ok(())
    }

    /// Starts the server again on the same port, with fresh state.
    pub async fn restart(&self) -> Result<()> {
        let listener = ferry_signaling::bind(self.addr)
            .await
            .with_context(|| format!("binding {} again after a stop", self.addr))?;
        self.serve(listener).await;
        Ok(())
    }

    async fn serve(&self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = ferry_signaling::Config {
            static_dir: Some(self.static_dir.clone()),
            ..Default::default()
        };
        let shutdown = async move {
            // A dropped sender stops the server too, so a failing test cannot leave it running.
            let _ = stopped.await;
        };
        let task = tokio::spawn(ferry_signaling::serve(listener, config, shutdown));
        *self.running.lock().await = Some(Running { stop, task });
    }
}
