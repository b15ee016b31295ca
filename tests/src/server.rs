//! Ferry's signaling server, run in-process through its library API and serving the
//! trunk-built app, so a test can stop it and start it again on the same port, over plain
//! HTTP on loopback or over HTTPS on a private address with Ferry's own certificate.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use ferry_protocol::LobbyScope;
use ferry_signaling::names::Machine;
use ferry_signaling::{CandidateFilter, IceConfig, Tls, certs};
use tempfile::TempDir;
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

use crate::wan::{Link, Wan};

/// How long a stopped server may take to return from `serve`.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The private address `./test.sh` adds to the loopback device of the tests' network
/// namespace: an address that is not loopback, as another machine on a LAN would reach.
pub const PRIVATE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// How a scenario's server is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The address to listen on, on a free port.
    pub ip: IpAddr,
    /// Serve HTTPS with Ferry's own certificate authority (in a temporary data directory)
    /// instead of plain HTTP.
    pub self_signed: bool,
    /// What the browsers are told about ICE servers.
    pub ice: IceConfig,
    /// An emulated wide-area link between the browsers, when set.
    pub wan: Option<Link>,
    /// Who meets in the lobby.
    pub lobby: LobbyScope,
    /// The Redis every instance of the service shares, for a scenario with several
    /// ([`Server::another`]); `None` for one instance alone.
    pub redis: Option<String>,
    /// How long a crashed instance stays known to the others.
    pub instance_ttl: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            ip: Ipv4Addr::LOCALHOST.into(),
            self_signed: false,
            ice: IceConfig::default(),
            wan: None,
            lobby: LobbyScope::Everyone,
            redis: None,
            instance_ttl: ferry_signaling::INSTANCE_TTL,
        }
    }
}

/// The server, running or stopped, always at the same address.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    static_dir: PathBuf,
    setup: Setup,
    tls: Option<Tls>,
    /// The relay that emulates the wide-area link, when there is one.
    wan: Option<Wan>,
    running: Mutex<Option<Running>>,
    /// Holds Ferry's certificate authority while the server lives.
    _data: TempDir,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    /// The runtime of an instance that shares Redis: all its tasks, which [`Server::crash`]
    /// drops at once.
    runtime: Option<Apart>,
}

/// A runtime of its own for one instance; dropping it ends every task on it at once.
#[derive(Debug)]
struct Apart(Option<tokio::runtime::Runtime>);

impl Drop for Apart {
    fn drop(&mut self) {
        // A runtime may not be dropped where blocking is not allowed, as in a test's task.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where `trunk build` puts the app: `<repo>/dist`.
pub fn default_static_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist"))
}

impl Server {
    /// Starts the server as `setup` says, serving the built app from `static_dir`.
    pub async fn start(static_dir: PathBuf, setup: Setup) -> Result<Self> {
        ensure!(
            static_dir.join("index.html").is_file(),
            "{} has no index.html: the end-to-end tests need the app built first; run the \
             README's test command (./test.sh), which builds it with `trunk build --release`",
            static_dir.display()
        );
        let data = tempfile::Builder::new().prefix("ferry-data-").tempdir()?;
        let tls = if setup.self_signed {
            let names = Machine::local().certificate_names(setup.ip);
            let identity = certs::self_signed(&data.path().join("ferry"), &names, "test")?;
            Some(Tls::new(identity)?)
        } else {
            None
        };
        let listener = ferry_signaling::bind(SocketAddr::new(setup.ip, 0))
            .await
            .with_context(|| {
                format!(
                    "binding the signaling server to {}: run the end-to-end tests through \
                     ./test.sh, whose network namespace has that address",
                    setup.ip
                )
            })?;
        let addr = listener.local_addr()?;
        let wan = setup.wan.map(Wan::new);
        let server = Self {
            addr,
            static_dir,
            setup,
            tls,
            wan,
            running: Mutex::new(None),
            _data: data,
        };
        server.serve(listener).await;
        Ok(server)
    }

    /// Another instance of the same service (set up with Redis), serving the same app on a
    /// port of its own.
    pub async fn another(&self) -> Result<Self> {
        ensure!(
            self.setup.redis.is_some(),
            "a second instance shares nothing without Redis"
        );
        Self::start(self.static_dir.clone(), self.setup.clone()).await
    }

    /// Ends the server as a crash (`kill -9`) would: its tasks are dropped mid-step, its
    /// connections cut without a close, and nothing is said to Redis.
    pub async fn crash(&self) -> Result<()> {
        let Some(running) = self.running.lock().await.take() else {
            bail!("the server is already stopped");
        };
        ensure!(
            running.runtime.is_some(),
            "only an instance that shares Redis runs apart and can crash"
        );
        // Dropping it shuts its runtime down at once.
        drop(running);
        Ok(())
    }

    /// The emulated wide-area link, when the server has one.
    pub fn wan(&self) -> Option<&Wan> {
        self.wan.as_ref()
    }

    /// The app's address, as a user types it into the browser.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
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

    /// Starts the server again on the same port, with fresh state and the same certificate.
    pub async fn restart(&self) -> Result<()> {
        let listener = ferry_signaling::bind(self.addr)
            .await
            .with_context(|| format!("binding {} again after a stop", self.addr))?;
        self.serve(listener).await;
        Ok(())
    }

    async fn serve(&self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let candidates = self
            .wan
            .clone()
            .map(|wan| CandidateFilter(Arc::new(move |candidate: &str| wan.rewrite(candidate))));
        let config = ferry_signaling::Config {
            static_dir: Some(self.static_dir.clone()),
            ice: self.setup.ice.clone(),
            tls: self.tls.clone(),
            candidates,
            lobby: self.setup.lobby,
            redis: self.setup.redis.clone(),
            instance_ttl: self.setup.instance_ttl,
            ..Default::default()
        };
        let shutdown = async move {
            // A dropped sender stops the server too, so a failing test cannot leave it running.
            let _ = stopped.await;
        };
        let serving = ferry_signaling::serve(listener, config, shutdown);
        // An instance that shares Redis runs on a runtime of its own, so that it can crash
        // alone; its sockets stay with the test's runtime, which outlives it.
        let (task, runtime) = if self.setup.redis.is_some() {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the instance");
            (runtime.spawn(serving), Some(Apart(Some(runtime))))
        } else {
            (tokio::spawn(serving), None)
        };
        *self.running.lock().await = Some(Running {
            stop,
            task,
            runtime,
        });
    }
}
