//! `ferry` against a real signaling server on loopback: every failure a person can meet says
//! what happened (an unknown nick, a declined offer, no server, a certificate that does not
//! match), and a transfer between two `ferry`s lands byte for byte.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Output, Stdio};

use anyhow::{Context, Result, ensure};
use ferry_signaling::{Config, Tls, certs};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A server for one test, on a free loopback port, with what its TLS needs kept alive.
struct Server {
    url: String,
    fingerprint: Option<String>,
    ca: Option<std::path::PathBuf>,
    _data: TempDir,
}

async fn server(tls: bool) -> Result<Server> {
    let data = tempfile::tempdir()?;
    let mut config = Config::default();
    let mut fingerprint = None;
    let mut ca = None;
    if tls {
        let identity =
            certs::self_signed(&data.path().join("ferry"), &["localhost".into()], "test")?;
        fingerprint = Some(identity.fingerprint());
        let pem = identity.ca_pem.clone().context("a CA")?;
        let path = data.path().join("ca.crt");
        std::fs::write(&path, pem)?;
        ca = Some(path);
        config.tls = Some(Tls::new(identity)?);
    }
    let listener = ferry_signaling::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(ferry_signaling::serve(
        listener,
        config,
        std::future::pending(),
    ));
    let scheme = if tls { "https" } else { "http" };
    let host = if tls { "localhost" } else { "127.0.0.1" };
    Ok(Server {
        url: format!("{scheme}://{host}:{port}/"),
        fingerprint,
        ca,
        _data: data,
    })
}

/// `ferry` as `nick`, with a config folder of its own under `home`.
fn ferry(home: &Path, nick: &str, server: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args(["--bind", "127.0.0.1", "--nick", nick, "--server", server])
        .arg("--config-dir")
        .arg(home.join(nick))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn an_unknown_nick_is_named_with_what_to_do() -> Result<()> {
    let server = server(false).await?;
    let home = tempfile::tempdir()?;
    let file = home.path().join("a.txt");
    std::fs::write(&file, "a")?;
    let output = ferry(home.path(), "ana", &server.url)
        .args(["send", "--to", "nobody"])
        .arg(&file)
        .output()
        .await?;
    let said = stderr(&output);
    ensure!(
        output.status.code() == Some(1),
        "exit {:?}: {said}",
        output.status
    );
    ensure!(
        said.contains("nobody called nobody is online here") && said.contains("ferry who"),
        "{said}"
    );
    Ok(())
}

#[tokio::test]
async fn a_server_that_is_not_there_is_named() -> Result<()> {
    let home = tempfile::tempdir()?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let url = format!("http://{closed}/");
    let output = ferry(home.path(), "ana", &url).arg("who").output().await?;
    let said = stderr(&output);
    ensure!(
        output.status.code() == Some(1),
        "exit {:?}: {said}",
        output.status
    );
    ensure!(
        said.contains(&format!("cannot reach the Ferry server at {url}")),
        "{said}"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_file_is_named_before_anyone_is_bothered() -> Result<()> {
    let home = tempfile::tempdir()?;
    let output = ferry(home.path(), "ana", "http://127.0.0.1:9/")
        .args(["send", "--to", "bo", "/no/such/file.bin"])
        .output()
        .await?;
    let said = stderr(&output);
    ensure!(
        output.status.code() == Some(1),
        "exit {:?}: {said}",
        output.status
    );
    ensure!(said.contains("cannot read /no/such/file.bin"), "{said}");
    Ok(())
}

#[tokio::test]
async fn a_certificate_is_trusted_by_its_authority_or_fingerprint_and_never_blindly() -> Result<()>
{
    let server = server(true).await?;
    let home = tempfile::tempdir()?;
    let ca = server.ca.as_ref().context("a CA file")?;
    let print = server.fingerprint.clone().context("a fingerprint")?;

    let blind = ferry(home.path(), "ana", &server.url)
        .arg("who")
        .output()
        .await?;
    let said = stderr(&blind);
    ensure!(blind.status.code() == Some(1), "trusted blindly: {said}");
    ensure!(said.contains("cannot reach the Ferry server"), "{said}");

    let by_ca = ferry(home.path(), "ana", &server.url)
        .arg("--ca")
        .arg(ca)
        .arg("who")
        .output()
        .await?;
    ensure!(by_ca.status.success(), "with --ca: {}", stderr(&by_ca));
    ensure!(
        String::from_utf8_lossy(&by_ca.stderr).contains("Nobody else is here."),
        "{}",
        stderr(&by_ca)
    );

    let by_print = ferry(home.path(), "ana", &server.url)
        .args(["--fingerprint", &print, "who"])
        .output()
        .await?;
    ensure!(
        by_print.status.success(),
        "with --fingerprint: {}",
        stderr(&by_print)
    );

    let wrong = "00:".repeat(31) + "00";
    let mismatch = ferry(home.path(), "ana", &server.url)
        .args(["--fingerprint", &wrong, "who"])
        .output()
        .await?;
    let said = stderr(&mismatch);
    ensure!(
        mismatch.status.code() == Some(1),
        "a wrong print was trusted: {said}"
    );
    ensure!(said.contains("does not have the fingerprint"), "{said}");
    Ok(())
}

#[tokio::test]
async fn a_declined_offer_says_so_on_both_sides_and_nothing_lands() -> Result<()> {
    let server = server(false).await?;
    let home = tempfile::tempdir()?;
    let target = home.path().join("in");
    let mut receiver = ferry(home.path(), "bo", &server.url)
        .args(["receive", "--dir"])
        .arg(&target)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_listed(home.path(), &server.url, "bo").await?;
    let file = home.path().join("unwanted.bin");
    std::fs::write(&file, vec![7; 3000])?;
    let sender = ferry(home.path(), "ana", &server.url)
        .args(["send", "--to", "bo"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()?;
    let mut answer = receiver.stdin.take().context("bo's stdin")?;
    answer.write_all(b"n\n").await?;
    drop(answer);
    let sent = sender.wait_with_output().await?;
    let said = stderr(&sent);
    ensure!(
        sent.status.code() == Some(1),
        "exit {:?}: {said}",
        sent.status
    );
    ensure!(said.contains("bo declined"), "{said}");
    let received = receiver.wait_with_output().await?;
    let heard = stderr(&received);
    ensure!(
        heard.contains("Accept unwanted.bin (3.0 kB) from ana? [y/N]")
            && heard.contains("Declined unwanted.bin"),
        "{heard}"
    );
    ensure!(
        std::fs::read_dir(&target)?.next().is_none(),
        "nothing lands after a decline"
    );
    Ok(())
}

#[tokio::test]
async fn one_ferry_sends_a_folder_to_another_byte_for_byte() -> Result<()> {
    let server = server(false).await?;
    let home = tempfile::tempdir()?;
    let target = home.path().join("in");
    let receiver = ferry(home.path(), "bo", &server.url)
        .args(["receive", "--yes", "--dir"])
        .arg(&target)
        .stderr(Stdio::piped())
        .spawn()?;
    wait_listed(home.path(), &server.url, "bo").await?;
    let folder = home.path().join("out/trip");
    std::fs::create_dir_all(folder.join("day 2"))?;
    std::fs::create_dir_all(folder.join("empty"))?;
    let big: Vec<u8> = (0..(5u32 << 20) + 3)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(folder.join("day 2/big.bin"), &big)?;
    std::fs::write(folder.join("empty.txt"), b"")?;
    let sent = ferry(home.path(), "ana", &server.url)
        .args(["send", "--to", "bo"])
        .arg(&folder)
        .output()
        .await?;
    ensure!(sent.status.success(), "ferry send: {}", stderr(&sent));
    let received = receiver.wait_with_output().await?;
    ensure!(
        received.status.success(),
        "ferry receive: {}",
        stderr(&received)
    );
    ensure!(std::fs::read(target.join("trip/day 2/big.bin"))? == big);
    ensure!(std::fs::read(target.join("trip/empty.txt"))?.is_empty());
    ensure!(target.join("trip/empty").is_dir());
    ensure!(!target.join(".ferry").exists(), "no partial files are left");
    Ok(())
}

#[tokio::test]
async fn a_room_lists_only_who_is_in_it_and_says_its_link() -> Result<()> {
    let server = server(false).await?;
    let home = tempfile::tempdir()?;
    let room = "0123456789abcdef0123456789abcdef";
    let mut bo = ferry(home.path(), "bo", &server.url)
        .args(["--room", room, "receive", "--dir"])
        .arg(home.path().join("in"))
        .spawn()?;
    wait_listed_in(home.path(), &server.url, &["--room", room], "bo").await?;
    let lobby = ferry(home.path(), "cy", &server.url)
        .args(["--json", "who"])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&lobby.stdout);
    ensure!(
        said.contains(r#""users":[]"#),
        "the lobby lists someone of the room: {said}"
    );
    let link = format!("{}#room={room}", server.url);
    let in_room = ferry(home.path(), "dee", &link)
        .args(["--json", "who"])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&in_room.stdout);
    ensure!(
        said.contains(r#""users":["bo"]"#) && said.contains(&link),
        "a room link as --server joins the room and says its link: {said} {} {:?}",
        stderr(&in_room),
        in_room.status
    );
    bo.kill().await?;
    Ok(())
}

/// Waits until `nick` is listed to someone else, so an offer to them cannot race their join.
async fn wait_listed(home: &Path, server: &str, nick: &str) -> Result<()> {
    wait_listed_in(home, server, &[], nick).await
}

/// Waits until `nick` is listed to someone else in the place `place` names.
async fn wait_listed_in(home: &Path, server: &str, place: &[&str], nick: &str) -> Result<()> {
    // Polls up to 30 s, returning as soon as the list names them: a busy machine is slow to
    // start processes, not to list a join.
    for _ in 0..300 {
        let who = ferry(home, "watcher", server)
            .args(place)
            .args(["--json", "who"])
            .output()
            .await?;
        if String::from_utf8_lossy(&who.stdout).contains(&format!("\"{nick}\"")) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("{nick} never joined")
}
