//! A hostile signaling server, built as a proxy in front of the real one: it serves the app,
//! passes every WebSocket message through, except the signals two victims address to each
//! other, which it hands to Mallory, a third browser page that answers each side with its own
//! peer connection and forwards every data-channel message (`mallory.js`). Whatever the app
//! shows then is what a person would see with a server that swapped the keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use ferry_protocol::{ClientMessage, Nick, PeerId, ServerMessage, SignalPayload};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use tower_http::services::ServeDir;

use crate::user::User;

/// The script Mallory's page runs.
const MALLORY_JS: &str = include_str!("mallory.js");

/// A victim's socket: their id and nick, and where messages to their page go.
#[derive(Clone, Debug)]
struct Victim {
    id: PeerId,
    nick: Nick,
    to_page: mpsc::UnboundedSender<String>,
}

#[derive(Default, Debug)]
struct Shared {
    /// The pages of the victims, by nick, once welcomed.
    victims: HashMap<String, Victim>,
    /// Where signals for Mallory go, once its page connected.
    mallory: Option<mpsc::UnboundedSender<String>>,
}

#[derive(Clone, Debug)]
struct Proxy {
    upstream: String,
    shared: Arc<Mutex<Shared>>,
}

/// The hostile server: a proxy on loopback in front of the real server.
#[derive(Debug)]
pub struct Mallory {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Mallory {
    /// Starts a proxy in front of the server at `server_url` (`http://host:port/`) serving the
    /// app from `static_dir`, diverting the signals between `victims` (nicks).
    pub async fn start(server_url: &str, static_dir: PathBuf, victims: &[&str]) -> Result<Self> {
        let upstream = format!("{}ws", server_url.replacen("http", "ws", 1));
        let proxy = Proxy {
            upstream,
            shared: Arc::default(),
        };
        let named: Vec<String> = victims.iter().map(|nick| nick.to_string()).collect();
        let app = Router::new()
            .route(
                "/ws",
                get(
                    move |State(proxy): State<Proxy>, upgrade: WebSocketUpgrade| {
                        let named = named.clone();
                        async move { victim_socket(proxy, upgrade, named) }
                    },
                ),
            )
            .route("/mallory", get(mallory_socket))
            .fallback_service(ServeDir::new(static_dir))
            .with_state(proxy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }

    /// The address pages open to use the hostile server.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Turns `page` (a browser on this proxy's page, not joined) into Mallory.
    pub async fn run_in(&self, page: &User) -> Result<()> {
        page.client()
            .execute(
                MALLORY_JS,
                vec![json!(format!("ws://{}/mallory", self.addr))],
            )
            .await
            .context("starting Mallory's relay")?;
        Ok(())
    }
}

impl Mallory {
    /// How many peer connections Mallory's `page` holds: one towards each victim per lane
    /// once it sits between them.
    pub async fn connections(page: &User) -> Result<u64> {
        let count = page
            .client()
            .execute("return window.malloryConnections.size;", Vec::new())
            .await?;
        count.as_u64().context("Mallory's page did not say")
    }
}

impl Drop for Mallory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Mallory's page: signals from the victims come out, its own go to the victim named "to"
/// as if they came from the other victim.
async fn mallory_socket(State(proxy): State<Proxy>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| async move {
        let (mut sink, mut stream) = socket.split();
        let (sender, mut outbox) = mpsc::unbounded_channel::<String>();
        proxy.shared.lock().expect("not poisoned").mallory = Some(sender);
        let writer = tokio::spawn(async move {
            while let Some(text) = outbox.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        });
        while let Some(Ok(Message::Text(text))) = stream.next().await {
            let Ok(said) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let to = said["to"].as_str().unwrap_or_default().to_owned();
            let lane = said["lane"].as_u64().unwrap_or(0) as u32;
            let Ok(payload) = serde_json::from_value::<SignalPayload>(said["payload"].clone())
            else {
                continue;
            };
            let shared = proxy.shared.lock().expect("not poisoned");
            let Some(victim) = shared.victims.get(&to) else {
                continue;
            };
            let Some(posing_as) = shared.victims.values().find(|other| other.id != victim.id)
            else {
                continue;
            };
            let forged = ServerMessage::Signal {
                from: posing_as.id.clone(),
                from_nick: posing_as.nick.clone(),
                payload,
                lane,
            };
            let _ = victim
                .to_page
                .send(serde_json::to_string(&forged).expect("serializes"));
        }
        writer.abort();
    })
}

/// A page's socket: passed through to the real server, but signals between two victims go
/// to Mallory.
fn victim_socket(proxy: Proxy, upgrade: WebSocketUpgrade, victims: Vec<String>) -> Response {
    upgrade.on_upgrade(move |socket| async move {
        let Ok((server, _)) = tokio_tungstenite::connect_async(proxy.upstream.as_str()).await
        else {
            return;
        };
        let (mut to_server, mut from_server) = server.split();
        let (mut to_page, mut from_page) = socket.split();
        let (page_sender, mut page_outbox) = mpsc::unbounded_channel::<String>();
        let page_writer = tokio::spawn(async move {
            while let Some(text) = page_outbox.recv().await {
                if to_page.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        });
        let me: Arc<Mutex<Option<PeerId>>> = Arc::default();
        let downstream = {
            let (proxy, page_sender, me) = (proxy.clone(), page_sender.clone(), Arc::clone(&me));
            tokio::spawn(async move {
                while let Some(Ok(message)) = from_server.next().await {
                    let tungstenite::Message::Text(text) = message else {
                        continue;
                    };
                    if let Ok(ServerMessage::Welcome { id, nick, .. }) =
                        serde_json::from_str::<ServerMessage>(&text)
                        && victims.iter().any(|victim| victim == nick.as_str())
                    {
                        *me.lock().expect("not poisoned") = Some(id.clone());
                        proxy.shared.lock().expect("not poisoned").victims.insert(
                            nick.as_str().to_owned(),
                            Victim {
                                id,
                                nick,
                                to_page: page_sender.clone(),
                            },
                        );
                    }
                    if page_sender.send(text.to_string()).is_err() {
                        return;
                    }
                }
            })
        };
        while let Some(Ok(Message::Text(text))) = from_page.next().await {
            if divert(&proxy, &me, &text).is_some() {
                continue;
            }
            if to_server
                .send(tungstenite::Message::Text(text.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        downstream.abort();
        page_writer.abort();
    })
}

/// Hands a signal from one victim to another to Mallory instead; `None` when `text` is
/// anything else, which goes on to the server.
fn divert(proxy: &Proxy, me: &Mutex<Option<PeerId>>, text: &str) -> Option<()> {
    let ClientMessage::Signal { to, payload, lane } = serde_json::from_str(text).ok()? else {
        return None;
    };
    let me = me.lock().expect("not poisoned").clone()?;
    let shared = proxy.shared.lock().expect("not poisoned");
    let sender = shared.victims.values().find(|victim| victim.id == me)?;
    shared.victims.values().find(|victim| victim.id == to)?;
    let mallory = shared.mallory.as_ref()?;
    let said = json!({ "from": sender.nick.as_str(), "lane": lane, "payload": payload });
    mallory.send(said.to_string()).ok()
}
