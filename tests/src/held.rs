//! A server of the built app that holds back its wasm until told to let it go, so a test can
//! look at the page as a slow connection shows it before the app has arrived.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::sync::watch;
use tower_http::services::ServeDir;

/// The app, served from a folder, with every `.wasm` held until [`HeldApp::release`].
#[derive(Debug)]
pub struct HeldApp {
    addr: SocketAddr,
    released: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldApp {
    /// Serves the app built into `static_dir` on a free loopback port.
    pub async fn start(static_dir: PathBuf) -> Result<Self> {
        let released = Arc::new(watch::Sender::new(false));
        let gate = Arc::clone(&released);
        let app = Router::new()
            .fallback_service(ServeDir::new(static_dir))
            .layer(middleware::from_fn(move |request: Request, next: Next| {
                let mut open = gate.subscribe();
                async move {
                    if request.uri().path().ends_with(".wasm") {
                        // Held until released; a sender gone lets it through as well.
                        let _ = open.wait_for(|released| *released).await;
                    }
                    let response: Response = next.run(request).await;
                    response
                }
            }));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            released,
            task,
        })
    }

    /// The app's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Lets the wasm go, now and from now on.
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

impl Drop for HeldApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
