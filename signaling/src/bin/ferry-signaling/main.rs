//! `ferry-signaling`: reads its configuration from flags and `FERRY_*` environment variables,
//! serves until Ctrl-C or SIGTERM, and logs to standard error.

mod args;

use std::io::IsTerminal;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use ferry_signaling::Tls;
use ferry_signaling::banner::Banner;
use ferry_signaling::certs;
use ferry_signaling::names::Machine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tracing_subscriber::EnvFilter;

use crate::args::{Args, Security};

/// The allocator: jemalloc, whose background thread gives freed memory back to the system
/// within a second (set in `.cargo/config.toml`). ferry-load, 10,000 users: glibc's allocator
/// kept +218 MB after everyone left, jemalloc so set +18 MB; mimalloc kept +268 MB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// File descriptors kept for everything but connections: the listener, logs, the app's
/// files, certificates.
const SPARE_FILES: u64 = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    if args.relay_only_without_relay() {
        // Clap's own errors look the same, so this one reads like them.
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--relay-only needs a TURN server to relay through: give --turn-url (with \
                 --turn-secret) or a turn: --ice-server",
            )
            .exit();
    }
    let machine = Machine::local();
    let (tls, fingerprint) = match args.security() {
        Security::Plain => (None, None),
        Security::Files { cert, key } => {
            let identity = certs::from_files(&cert, &key)?;
            let fingerprint = identity.fingerprint();
            (Some(Tls::new(identity)?), Some(fingerprint))
        }
        Security::SelfSigned => {
            let dir = args.data_dir()?;
            let names = machine.certificate_names(args.listen.ip());
            let host = machine.host.as_deref().unwrap_or("this machine");
            let identity = certs::self_signed(&dir, &names, host)
                .with_context(|| format!("making Ferry's certificate in {}", dir.display()))?;
            if identity.new_ca {
                tracing::info!(dir = %dir.display(), "made a new certificate authority");
            }
            if identity.new_server_cert {
                tracing::info!(names = ?names, "issued a server certificate");
            }
            let fingerprint = identity.fingerprint();
            (Some(Tls::new(identity)?), Some(fingerprint))
        }
    };
    let ca_fingerprint = tls.as_ref().and(fingerprint.as_ref()).and_then(|_| {
        tls.as_ref()
            .and_then(Tls::ca_pem)
            .and_then(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
            .map(|der| certs::fingerprint(&der))
    });
    let config = args.config(tls, connection_capacity());
    let listener = ferry_signaling::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("could not read the bound address")?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let urls = machine.urls(addr, scheme);
    let banner = Banner {
        ca: ca_fingerprint.map(|ca| (format!("{}ca.crt", urls[0]), ca)),
        urls,
        fingerprint,
        qr: !args.quiet && !addr.ip().is_loopback(),
    };
    print!("{}", banner.render());
    tracing::info!(%addr, scheme, ttl_secs = args.presence_ttl_secs, "listening");
    ferry_signaling::serve(listener, config, shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// How many connections the process can hold: its file limit, raised as far as it may be,
/// less [`SPARE_FILES`].
fn connection_capacity() -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the file limit; assuming 1024");
            1024
        }
    };
    usize::try_from(files.saturating_sub(SPARE_FILES).max(SPARE_FILES)).unwrap_or(usize::MAX)
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM. Should a handler fail to install, that signal is
/// logged and ignored rather than stopping the server at once.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
