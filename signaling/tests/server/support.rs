//! Test helpers: a server on a free port, a WebSocket client that speaks the protocol, and a
//! bare HTTP client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use ferry_protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, Place, RoomId, ServerMessage, SessionToken,
    SignalPayload, UserInfo,
};
use ferry_signaling::Config;
use futures::{SinkExt, StreamExt};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The safety net on every wait: far longer than anything should take.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server running in this test's runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts a server with `config` on a free loopback port.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, config).await
    }

    /// Starts a server with `config` on `addr`.
    pub async fn start_on(addr: SocketAddr, config: Config) -> anyhow::Result<Self> {
        let listener = ferry_signaling::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ferry_signaling::serve(listener, config, async {
            // A dropped sender stops the server as well.
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// A handle on a server that runs elsewhere (the binary), for clients to connect to;
    /// stopping it stops nothing.
    pub fn at(addr: SocketAddr) -> Self {
        Self {
            addr,
            stop: None,
            task: tokio::spawn(async { Ok(()) }),
        }
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Asks the server to stop and waits until `serve` has returned; gives how long that took.
    pub async fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .context("serve did not return after shutdown")???;
        Ok(started.elapsed())
    }
}

/// A config with a short presence time-to-live, for expiry tests.
pub fn short_ttl(ttl: Duration) -> Config {
    Config {
        presence_ttl: ttl,
        ..Config::default()
    }
}

/// A protocol client over a real WebSocket.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The id from the last welcome this client received.
    id: Option<PeerId>,
}

/// A welcome's contents.
#[derive(Clone, Debug)]
pub struct Welcome {
    pub id: PeerId,
    pub nick: String,
    pub token: SessionToken,
    pub resumed: bool,
    pub users: Vec<UserInfo>,
    pub heartbeat_secs: u64,
    pub ice_servers: Vec<ferry_protocol::IceServer>,
    pub relay_only: bool,
    pub room: Option<RoomId>,
}

impl Client {
    /// Opens a WebSocket to `server` without joining.
    pub async fn connect(server: &TestServer) -> anyhow::Result<Self> {
        Self::connect_with_origin(server, None).await
    }

    /// Opens a WebSocket to `server`, sending `origin` as the `Origin` header.
    pub async fn connect_with_origin(
        server: &TestServer,
        origin: Option<&str>,
    ) -> anyhow::Result<Self> {
        Self::try_connect(server, origin)
            .await
            .map_err(|err| anyhow!("connecting to {}: {err}", server.addr))
    }

    /// Opens a WebSocket, returning tungstenite's error (an HTTP refusal, say) as it is.
    pub async fn try_connect(
        server: &TestServer,
        origin: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        Self::try_connect_as(server, origin, None).await
    }

    /// [`Client::try_connect`] claiming to have reached the server as `host`.
    pub async fn try_connect_as(
        server: &TestServer,
        origin: Option<&str>,
        host: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        Self::try_connect_with(server, &[("origin", origin), ("host", host)]).await
    }

    /// Opens a WebSocket to `server` through a proxy that says the client is `client`
    /// (`X-Forwarded-For`).
    pub async fn connect_forwarded(server: &TestServer, client: &str) -> anyhow::Result<Self> {
        Self::try_connect_with(server, &[("x-forwarded-for", Some(client))])
            .await
            .map_err(|err| anyhow!("connecting to {}: {err}", server.addr))
    }

    /// Opens a WebSocket with these extra request headers.
    async fn try_connect_with(
        server: &TestServer,
        headers: &[(&'static str, Option<&str>)],
    ) -> Result<Self, tungstenite::Error> {
        let mut request = server.ws_url().into_client_request()?;
        for &(name, value) in headers {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value).map_err(tungstenite::http::Error::from)?;
                request.headers_mut().insert(name, value);
            }
        }
        let (ws, _response) =
            tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| tungstenite::Error::ConnectionClosed)??;
        Ok(Self { ws, id: None })
    }

    /// Opens a WebSocket to `server` from the loopback address `from` (any of 127.0.0.0/8), as
    /// another machine.
    pub async fn connect_from(server: &TestServer, from: IpAddr) -> anyhow::Result<Self> {
        let stream = tcp_from(from, server.addr).await?;
        let (ws, _response) = tokio::time::timeout(
            PATIENCE,
            tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(stream)),
        )
        .await??;
        Ok(Self { ws, id: None })
    }

    /// Connects and joins as `nick`, expecting a fresh welcome, and waits until the arrival
    /// has been announced (to this client too, so to everyone): from then on, every welcome
    /// lists this client, and the next thing the others hear of is what happens after it.
    pub async fn join(server: &TestServer, nick: &str) -> anyhow::Result<(Self, Welcome)> {
        let mut client = Self::connect(server).await?;
        let welcome = client.join_as(nick, None).await?;
        if welcome.resumed {
            bail!("{nick}: a fresh join came back resumed");
        }
        let announced = client.recv().await?;
        if !arrived(&announced, &welcome.id) {
            bail!("{nick}: expected the announcement of its own arrival, got {announced:?}");
        }
        Ok((client, welcome))
    }

    /// Connects and joins as `nick` in `place`, as [`Client::join`] does in the lobby.
    pub async fn join_in(
        server: &TestServer,
        nick: &str,
        place: &Place,
    ) -> anyhow::Result<(Self, Welcome)> {
        let mut client = Self::connect(server).await?;
        let welcome = client.join_as_in(nick, None, place).await?;
        let announced = client.recv().await?;
        if !arrived(&announced, &welcome.id) {
            bail!("{nick}: expected the announcement of its own arrival, got {announced:?}");
        }
        Ok((client, welcome))
    }

    /// Sends a join on this connection and expects a welcome.
    pub async fn join_as(
        &mut self,
        nick: &str,
        token: Option<SessionToken>,
    ) -> anyhow::Result<Welcome> {
        self.join_as_in(nick, token, &Place::Lobby).await
    }

    /// Sends a join into `place` on this connection and expects a welcome.
    pub async fn join_as_in(
        &mut self,
        nick: &str,
        token: Option<SessionToken>,
        place: &Place,
    ) -> anyhow::Result<Welcome> {
        self.send(&ClientMessage::Join {
            version: PROTOCOL_VERSION,
            nick: nick.into(),
            token,
            place: place.clone(),
        })
        .await?;
        match self.recv().await? {
            ServerMessage::Welcome {
                id,
                nick,
                token,
                resumed,
                users,
                ice_servers,
                relay_only,
                heartbeat_secs,
                room,
            } => {
                let nick = nick.to_string();
                self.id = Some(id.clone());
                Ok(Welcome {
                    id,
                    nick,
                    token,
                    resumed,
                    users,
                    heartbeat_secs,
                    ice_servers,
                    relay_only,
                    room,
                })
            }
            other => bail!("expected a welcome for {nick}, got {other:?}"),
        }
    }

    /// This client's id; it must have joined.
    pub fn id(&self) -> PeerId {
        self.id.clone().expect("the client has joined")
    }

    pub async fn send(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        self.send_text(&serde_json::to_string(message)?).await
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Message::text(text)).await.context("sending")
    }

    pub async fn send_frame(&mut self, message: Message) -> anyhow::Result<()> {
        self.ws.send(message).await.context("sending")
    }

    /// Sends a signal with `payload` to `to`.
    pub async fn signal(&mut self, to: &PeerId, payload: SignalPayload) -> anyhow::Result<()> {
        self.send(&ClientMessage::Signal {
            to: to.clone(),
            payload,
            lane: 0,
        })
        .await
    }

    /// The next frame, whatever it is; `None` when the connection has ended.
    pub async fn next_frame(&mut self) -> anyhow::Result<Option<Message>> {
        match tokio::time::timeout(PATIENCE, self.ws.next()).await {
            Err(_) => bail!("nothing arrived within {PATIENCE:?}"),
            Ok(None) => Ok(None),
            Ok(Some(Ok(message))) => Ok(Some(message)),
            Ok(Some(Err(err))) => bail!("reading: {err}"),
        }
    }

    /// The next protocol message; a close or the end of the connection is an error.
    pub async fn recv(&mut self) -> anyhow::Result<ServerMessage> {
        loop {
            match self.next_frame().await? {
                Some(Message::Text(text)) => {
                    return serde_json::from_str(&text).with_context(|| format!("parsing {text}"));
                }
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => bail!("expected a message, got {other:?}"),
            }
        }
    }

    /// The first message `wanted` picks within `within`, skipping the others.
    pub async fn hear(
        &mut self,
        within: Duration,
        what: &str,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> anyhow::Result<ServerMessage> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.ws.next())
                .await
                .with_context(|| format!("{what} not heard within {within:?}"))?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: ServerMessage =
                        serde_json::from_str(&text).with_context(|| format!("parsing {text}"))?;
                    if wanted(&message) {
                        return Ok(message);
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => bail!("expected {what}, got {other:?}"),
            }
        }
    }

    /// The next message, sending heartbeats every `period` while waiting for it.
    pub async fn recv_heartbeating(&mut self, period: Duration) -> anyhow::Result<ServerMessage> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.send(&ClientMessage::Heartbeat).await?;
            match tokio::time::timeout(period, self.ws.next()).await {
                Err(_) if Instant::now() > deadline => bail!("nothing arrived within {PATIENCE:?}"),
                Err(_) => {}
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str(&text).with_context(|| format!("parsing {text}"));
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => bail!("expected a message, got {other:?}"),
            }
        }
    }

    /// Expects the next message to be an error with `code`; returns its text.
    pub async fn expect_error(&mut self, code: ErrorCode) -> anyhow::Result<String> {
        match self.recv().await? {
            ServerMessage::Error {
                code: actual,
                message,
            } if actual == code => Ok(message),
            other => bail!("expected a {code:?} error, got {other:?}"),
        }
    }

    /// Reads until the server's close frame; returns the messages before it and its code.
    pub async fn expect_close(&mut self) -> anyhow::Result<(Vec<ServerMessage>, u16)> {
        let mut before = Vec::new();
        loop {
            match self.next_frame().await? {
                Some(Message::Text(text)) => before.push(serde_json::from_str(&text)?),
                Some(Message::Close(Some(frame))) => return Ok((before, frame.code.into())),
                Some(Message::Close(None)) => bail!("a close frame without a code"),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                Some(other) => bail!("expected a close frame, got {other:?}"),
                None => bail!("the connection ended without a close frame"),
            }
        }
    }

    /// Closes cleanly with a close frame, as a browser does when its tab closes, and expects
    /// the server's close reply.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.ws.close(None).await.context("closing")?;
        loop {
            match self.next_frame().await? {
                Some(Message::Close(_)) => return Ok(()),
                Some(_) => {}
                None => bail!("the server did not answer the close frame"),
            }
        }
    }

    /// Ends the TCP connection without a close frame, as a crashed browser or a network
    /// failure would.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// Whether `message` announces that `id` came online.
pub fn arrived(message: &ServerMessage, id: &PeerId) -> bool {
    matches!(message, ServerMessage::UsersChanged { joined, .. } if joined.iter().any(|user| &user.id == id))
}

/// Whether `message` announces that `id` left, and nothing else.
pub fn departed(message: &ServerMessage, id: &PeerId) -> bool {
    matches!(message, ServerMessage::UsersChanged { joined, left, away } if joined.is_empty() && away.is_empty() && left == std::slice::from_ref(id))
}

/// A join message with the current protocol version.
pub fn join(nick: &str, token: Option<SessionToken>) -> ClientMessage {
    ClientMessage::Join {
        version: PROTOCOL_VERSION,
        nick: nick.into(),
        token,
        place: Place::Lobby,
    }
}

/// An id that no user has.
pub fn stranger() -> PeerId {
    PeerId::from_random_bytes([0x5a; PeerId::BYTES])
}

/// An offer whose SDP names `tag`, to tell signals apart.
pub fn offer(tag: &str) -> SignalPayload {
    SignalPayload::Offer {
        sdp: format!("v=0 {tag}"),
    }
}

/// Expects `message` to be a signal from `from` with `payload`.
pub fn assert_signal(
    message: &ServerMessage,
    from: &Client,
    from_nick: &str,
    payload: &SignalPayload,
) {
    match message {
        ServerMessage::Signal {
            from: actual_from,
            from_nick: actual_nick,
            payload: actual_payload,
            ..
        } => {
            assert_eq!(actual_from, &from.id(), "the signal's sender");
            assert_eq!(actual_nick.as_str(), from_nick, "the signal's sender nick");
            assert_eq!(actual_payload, payload, "the signal's payload");
        }
        other => panic!("expected a signal, got {other:?}"),
    }
}

/// A response from [`http_get`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: String,
}

/// `GET path` over a fresh TCP connection, HTTP/1.1 with `Connection: close`.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<HttpResponse> {
    get_over(TcpStream::connect(addr).await?, addr, path).await
}

/// [`http_get`] from the loopback address `from` (any of 127.0.0.0/8), as another machine.
pub async fn http_get_from(
    from: IpAddr,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<HttpResponse> {
    get_over(tcp_from(from, addr).await?, addr, path).await
}

/// A TCP connection to `addr` from the local address `from`.
pub async fn tcp_from(from: IpAddr, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    Ok(socket.connect(addr).await?)
}

/// Reads from `stream` until the server closes it, within [`PATIENCE`]; returns what it sent.
pub async fn read_until_closed(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut received = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received))
        .await
        .context("the server did not close the connection")??;
    Ok(received)
}

/// `GET path` over HTTPS, trusting only `root` (a certificate in DER) and expecting the
/// server's certificate to name the address it is reached at.
pub async fn https_get(
    addr: SocketAddr,
    path: &str,
    root: &CertificateDer<'static>,
) -> anyhow::Result<HttpResponse> {
    get_over(tls_connect(addr, root).await?, addr, path).await
}

/// A TLS connection to `addr` that trusts only `root` and checks the certificate names
/// `addr`'s IP address.
pub async fn tls_connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::IpAddress(addr.ip().into());
    let tcp = TcpStream::connect(addr).await?;
    Ok(tokio::time::timeout(PATIENCE, connector.connect(name, tcp)).await??)
}

/// `GET path` over `stream`, HTTP/1.1 with `Connection: close`.
async fn get_over<S>(mut stream: S, addr: SocketAddr, path: &str) -> anyhow::Result<HttpResponse>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .context("waiting for the HTTP response")??;
    let raw = String::from_utf8(raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .context("a response without a blank line")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
    };
    Ok(HttpResponse {
        status,
        content_type: header("content-type"),
        location: header("location"),
        body: body.to_owned(),
    })
}

/// The server binary, run with its output gathered line by line.
pub struct Binary {
    child: tokio::process::Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    new_line: Arc<tokio::sync::Notify>,
}

impl Binary {
    /// Starts `ferry-signaling` with `args` and `env`, reading its standard output and error.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry-signaling"));
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let new_line = Arc::new(tokio::sync::Notify::new());
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        for output in [
            Box::new(stdout) as Box<dyn AsyncRead + Send + Unpin>,
            Box::new(stderr),
        ] {
            let (lines, new_line) = (Arc::clone(&lines), Arc::clone(&new_line));
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(output).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().expect("never poisoned").push(line);
                    new_line.notify_waiters();
                }
            });
        }
        Ok(Self {
            child,
            lines,
            new_line,
        })
    }

    /// Waits for a line of output that `find` picks something out of.
    pub async fn wait_for<T>(&self, find: impl Fn(&str) -> Option<T>) -> anyhow::Result<T> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.new_line.notified();
                if let Some(found) = self.lines().iter().find_map(|line| find(line)) {
                    return found;
                }
                notified.await;
            }
        })
        .await
        .with_context(|| format!("waiting for a line; the output so far: {:?}", self.lines()))
    }

    /// The address in the banner's first `scheme://ADDR/` URL.
    pub async fn addr(&self, scheme: &str) -> anyhow::Result<SocketAddr> {
        let prefix = format!("{scheme}://");
        self.wait_for(|line| {
            let rest = line.split(&prefix).nth(1)?;
            rest.split('/').next()?.parse().ok()
        })
        .await
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("never poisoned").clone()
    }

    /// Kills the server with SIGKILL, as a crash would: it cleans nothing up.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Stops the server with SIGTERM and waits for it to exit by itself.
    pub async fn stop(mut self) -> anyhow::Result<Vec<String>> {
        let pid = self
            .child
            .id()
            .context("the server is running")?
            .to_string();
        tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await?;
        let status = tokio::time::timeout(PATIENCE, self.child.wait()).await??;
        anyhow::ensure!(status.success(), "the server exited with {status}");
        Ok(self.lines())
    }

    /// Runs the binary to its end, as for a refused command line; gives its exit code and
    /// what it printed, standard output then standard error.
    pub async fn run_to_end(args: &[&str]) -> anyhow::Result<(Option<i32>, String)> {
        Self::run_to_end_with_env(args, &[]).await
    }

    /// [`Binary::run_to_end`] with more environment variables.
    pub async fn run_to_end_with_env(
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Option<i32>, String)> {
        let output = tokio::time::timeout(
            PATIENCE,
            tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry-signaling"))
                .args(args)
                .envs(env.iter().copied())
                .output(),
        )
        .await??;
        let printed = [output.stdout, output.stderr].concat();
        Ok((
            output.status.code(),
            String::from_utf8_lossy(&printed).into_owned(),
        ))
    }
}
