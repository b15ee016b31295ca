//! HTTPS: a certificate from files, Ferry's own certificate authority kept across restarts,
//! plain HTTP on the TLS port redirected, and contradictory flags refused at start-up.

use std::fs;

use ferry_protocol::ServerMessage;
use ferry_signaling::{Config, Tls, certs};
use futures::{SinkExt, StreamExt};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Binary, PATIENCE, TestServer, http_get, https_get, join, tls_connect};

/// A certificate for 127.0.0.1 and its key, as PEM files in `dir`, like one from an ACME
/// client; returns the paths and the certificate.
fn certificate_files(
    dir: &std::path::Path,
) -> anyhow::Result<(
    std::path::PathBuf,
    std::path::PathBuf,
    CertificateDer<'static>,
)> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let (cert, key) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
    fs::write(&cert, made.cert.pem())?;
    fs::write(&key, made.signing_key.serialize_pem())?;
    Ok((cert, key, made.cert.der().clone()))
}

#[tokio::test]
async fn a_certificate_from_files_serves_https_and_wss() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key, der) = certificate_files(dir.path())?;
    let tls = Tls::new(certs::from_files(&cert, &key)?)?;
    let server = TestServer::start(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await?;

    let health = https_get(server.addr, "/healthz", &der).await?;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    // Without Ferry's own authority there is nothing to serve at /ca.crt.
    assert_eq!(https_get(server.addr, "/ca.crt", &der).await?.status, 404);

    let stream = tls_connect(server.addr, &der).await?;
    let url = format!("wss://{}/ws", server.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    ws.send(Message::text(serde_json::to_string(&join("ana", None))?))
        .await?;
    let reply = tokio::time::timeout(PATIENCE, ws.next())
        .await?
        .expect("a reply")?;
    let reply: ServerMessage = serde_json::from_str(reply.to_text()?)?;
    assert!(matches!(reply, ServerMessage::Welcome { .. }), "{reply:?}");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_sent_to_https() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key, _) = certificate_files(dir.path())?;
    let server = TestServer::start(Config {
        tls: Some(Tls::new(certs::from_files(&cert, &key)?)?),
        ..Config::default()
    })
    .await?;
    let response = http_get(server.addr, "/?listUsers=true").await?;
    assert_eq!(response.status, 308);
    assert_eq!(
        response.location,
        Some(format!("https://{}/?listUsers=true", server.addr))
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn self_signed_makes_an_authority_once_and_names_the_listen_address() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let dir = data.path().join("ferry");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--self-signed",
        "--data-dir",
        dir.to_str().expect("a UTF-8 path"),
    ];
    let mut authorities = Vec::new();
    for _ in 0..2 {
        let server = Binary::start(&args, &[("RUST_LOG", "warn")])?;
        let addr = server.addr("https").await?;
        // The authority on disk is what a person trusts; the server must present a
        // certificate it issued, naming the address it was reached at.
        let kept = CertificateDer::from_pem_file(dir.join("ca.crt"))?;
        let served = https_get(addr, "/ca.crt", &kept).await?;
        assert_eq!(served.status, 200);
        assert_eq!(
            served.content_type.as_deref(),
            Some("application/x-pem-file")
        );
        let served = CertificateDer::from_pem_slice(served.body.as_bytes())?;
        assert_eq!(served, kept, "/ca.crt serves the kept authority");
        assert_eq!(https_get(addr, "/healthz", &served).await?.body, "ok");

        // The banner's fingerprint is the one the browser will show for the certificate.
        let stream = tls_connect(addr, &served).await?;
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the server presents a certificate")
            .clone();
        let fingerprint = certs::fingerprint(&presented);
        server
            .wait_for(|line| {
                line.contains(&format!("certificate SHA-256 {fingerprint}"))
                    .then_some(())
            })
            .await?;
        authorities.push(certs::fingerprint(&served));
        server.stop().await?;
    }
    assert_eq!(authorities[0], authorities[1], "the authority is reused");
    Ok(())
}

#[tokio::test]
async fn contradictory_or_incomplete_flags_are_refused_at_start_up() -> anyhow::Result<()> {
    let cases: [(&[&str], &str); 6] = [
        (&["--self-signed", "--plain-http"], "--plain-http"),
        (
            &["--tls-cert", "a.pem", "--tls-key", "k.pem", "--self-signed"],
            "--self-signed",
        ),
        (&["--tls-cert", "a.pem"], "--tls-key"),
        (&["--turn-secret", "s"], "--turn-url"),
        (&["--relay-only"], "--relay-only needs a TURN server"),
        (
            &["--turn-url", "stun:x.example", "--turn-secret", "s"],
            "not a turn: or turns: URL",
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = Binary::run_to_end(args).await?;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?} should mention {expected:?}: {stderr}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn unreadable_certificate_files_stop_the_start_with_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("a UTF-8 path");
    let (code, stderr) = Binary::run_to_end(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
    ])
    .await?;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("missing.pem holds no usable certificate"),
        "{stderr}"
    );
    Ok(())
}
