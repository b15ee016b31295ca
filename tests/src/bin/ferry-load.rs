//! Ferry's signaling load benchmark: a crowd joins the real server binary at once, some of
//! them relay signals to each other at a steady rate, then everyone leaves; it prints joins per
//! second, relay latency, the server's memory per joined connection and after everyone left.
//! With `--rooms N` the same crowd then comes again split into N private rooms, so the two
//! are compared in one run. With `--instances N` it comes again split over N server
//! instances sharing a Redis this tool starts (Debian's `redis-server`), each pair of relaying
//! users on two different instances, beside the one instance of the same run.
//!
//! Everything runs on loopback, bounded in count and time. It measures and asserts nothing
//! but that the crowd was served: nobody kicked, everyone ended with the full list. Build the
//! server first (`cargo build --release -p ferry-signaling`), then
//! `cargo run --release -p ferry-e2e --bin ferry-load -- --users 10000`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use ferry_protocol::{
    ClientMessage, PROTOCOL_VERSION, PeerId, Place, RoomId, ServerMessage, SignalPayload,
};
use ferry_signaling::testing::RedisServer;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the whole run may take before it gives up.
const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// How long the server is given to settle (free memory, close sockets) after a phase.
const SETTLE: Duration = Duration::from_secs(2);

/// Runs a crowd against `ferry-signaling` on loopback and prints what it measured.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// How many people join at once.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// How many connection attempts are under way at once, as a crowd of browsers would be.
    #[arg(long, default_value_t = 1_000)]
    connecting: usize,
    /// Relayed signals per second, in all, during the relay phase.
    #[arg(long, default_value_t = 2_000)]
    relay_rate: u32,
    /// How long the relay phase lasts, in seconds.
    #[arg(long, default_value_t = 5)]
    relay_secs: u64,
    /// How many pairs of users exchange the relayed signals.
    #[arg(long, default_value_t = 200)]
    relay_pairs: usize,
    /// How many times the crowd comes and goes, to show that a server which went through one
    /// crowd needs no more memory for the next.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// After the lobby crowd, the same crowd again in this many private rooms (0: none).
    #[arg(long, default_value_t = 0)]
    rooms: usize,
    /// After the crowd on one instance, the same crowd again split over this many instances
    /// on one Redis (1: no second crowd).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=8))]
    instances: u64,
    /// The server binary [default: <repo>/target/release/ferry-signaling].
    #[arg(long)]
    server: Option<PathBuf>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One joined member of the crowd.
struct Member {
    id: PeerId,
    /// Its room, when the crowd is in rooms.
    room: Option<usize>,
    /// The instance it joined through.
    instance: usize,
    write: SplitSink<Socket, Message>,
    read: SplitStream<Socket>,
}

#[tokio::main]
async fn main() {
    if let Err(error) = tokio::time::timeout(RUN_DEADLINE, load(Args::parse()))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the run took longer than {RUN_DEADLINE:?}")))
    {
        eprintln!("ferry-load: {error:#}");
        std::process::exit(1);
    }
}

/// Where the crowd meets: all in the lobby, or spread over this many rooms.
#[derive(Clone, Copy, Debug)]
enum Spread {
    Lobby,
    Rooms(usize),
}

impl Spread {
    /// The room of member `index`.
    fn room_of(self, index: usize) -> Option<usize> {
        match self {
            Self::Lobby => None,
            Self::Rooms(rooms) => Some(index % rooms),
        }
    }

    /// How many of `users` are in member `index`'s place.
    fn together(self, index: usize, users: usize) -> usize {
        match self {
            Self::Lobby => users,
            Self::Rooms(rooms) => users / rooms + usize::from(index % rooms < users % rooms),
        }
    }

    /// The place member `index` joins.
    fn place(self, index: usize) -> Place {
        match self.room_of(index) {
            None => Place::Lobby,
            Some(room) => {
                let mut bytes = [0; RoomId::BYTES];
                bytes[..8].copy_from_slice(&(room as u64).to_le_bytes());
                Place::Room(RoomId::from_random_bytes(bytes))
            }
        }
    }
}

async fn load(args: Args) -> Result<()> {
    ensure!(args.users >= 2, "--users must be at least 2");
    ensure!(
        args.rooms == 0 || args.users / args.rooms >= 2,
        "--rooms needs at least two users each"
    );
    ensure!(
        args.relay_pairs * 2 <= args.users,
        "--relay-pairs needs two users each"
    );
    // Both ends of the crowd's connections are open at once: the server holds one, this
    // process the other.
    let files = rlimit::increase_nofile_limit(u64::MAX)?;
    ensure!(
        files > args.users as u64 + 100,
        "this process may open {files} files, too few for {} users",
        args.users
    );
    let server = Server::start(&args, None).await?;
    let baseline = server.rss()?;
    println!(
        "ferry-signaling pid {}, {} users, RSS at start {:.1} MB",
        server.pid,
        args.users,
        mb(baseline)
    );
    let alone = std::slice::from_ref(&server);
    let mut last = None;
    for round in 1..=args.rounds {
        if args.rounds > 1 {
            println!("round {round}:");
        }
        let lobby = crowd(alone, &args, Spread::Lobby, baseline).await?;
        if args.rooms > 0 {
            println!("the same crowd in {} rooms:", args.rooms);
            let rooms = crowd(alone, &args, Spread::Rooms(args.rooms), baseline).await?;
            println!(
                "rooms against the lobby, same run: welcome p99 {:.0} against {:.0} ms, relay p99 \
                 {:.2} against {:.2} ms, RSS joined {:.1} against {:.1} MB ({:+.2} KiB per room)",
                rooms.welcome_p99,
                lobby.welcome_p99,
                rooms.relay_p99,
                lobby.relay_p99,
                mb(rooms.joined_rss),
                mb(lobby.joined_rss),
                (rooms.joined_rss as f64 - lobby.joined_rss as f64) / 1024.0 / args.rooms as f64
            );
        }
        last = Some(lobby);
    }
    server.stop().await?;
    match last {
        Some(alone) if args.instances > 1 => several(&args, &alone).await,
        _ => Ok(()),
    }
}

/// The same crowd in the lobby of `--instances` instances on one Redis, compared with the
/// crowd on one instance (`alone`).
async fn several(args: &Args, alone: &Figures) -> Result<()> {
    let redis = RedisServer::start().await?;
    let mut servers = Vec::new();
    for _ in 0..args.instances {
        servers.push(Server::start(args, Some(&redis.url())).await?);
    }
    let baseline = servers.iter().map(Server::rss).sum::<Result<u64>>()?;
    println!(
        "the same crowd over {} instances on one Redis, each user on instance (its number mod {}), \
         each relaying pair across two; RSS at start {:.1} MB in all:",
        args.instances,
        args.instances,
        mb(baseline)
    );
    let figures = crowd(&servers, args, Spread::Lobby, baseline).await?;
    println!(
        "{} instances against one, same run: joins/s {:.0} against {:.0}, welcome p99 {:.0} \
         against {:.0} ms, relay p50 {:.2} against {:.2} ms, p99 {:.2} against {:.2} ms, \
         KiB per joined connection {:.1} against {:.1} (all instances' RSS)",
        args.instances,
        figures.joins_per_sec,
        alone.joins_per_sec,
        figures.welcome_p99,
        alone.welcome_p99,
        figures.relay_p50,
        alone.relay_p50,
        figures.relay_p99,
        alone.relay_p99,
        figures.kib_per_connection,
        alone.kib_per_connection
    );
    for server in servers {
        server.stop().await?;
    }
    Ok(())
}

/// What one crowd measured, to compare crowds of one run.
struct Figures {
    joins_per_sec: f64,
    welcome_p99: f64,
    relay_p50: f64,
    relay_p99: f64,
    joined_rss: u64,
    kib_per_connection: f64,
}

/// The servers' CPU seconds and resident memory, summed.
fn cpu_of(servers: &[Server]) -> Result<f64> {
    servers.iter().map(Server::cpu_seconds).sum()
}

fn rss_of(servers: &[Server]) -> Result<u64> {
    servers.iter().map(Server::rss).sum()
}

/// One crowd, spread as `spread` over `servers`: joins, relays, leaves, and what each cost.
async fn crowd(servers: &[Server], args: &Args, spread: Spread, baseline: u64) -> Result<Figures> {
    let cpu_before = cpu_of(servers)?;
    let (members, joined_in, mut welcomes) = join_crowd(servers, args, spread).await?;
    welcomes.sort_by(f64::total_cmp);
    println!(
        "joins: {} users joined and saw everyone in their place in {:.2} s: {:.0} joins/s; \
         server CPU {:.1} s, this crowd's {:.1} s",
        args.users,
        joined_in.as_secs_f64(),
        args.users as f64 / joined_in.as_secs_f64(),
        cpu_of(servers)? - cpu_before,
        cpu_seconds("self")?
    );
    println!(
        "welcomes: from join sent to welcome read, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         nobody refused",
        percentile(&welcomes, 0.50),
        percentile(&welcomes, 0.99),
        welcomes.last().copied().unwrap_or(0.0)
    );
    tokio::time::sleep(SETTLE).await;
    let joined_rss = rss_of(servers)?;
    let grown = joined_rss.saturating_sub(baseline) as f64;
    println!(
        "memory: RSS {:.1} MB with everyone joined and idle: {:.1} KiB per joined connection",
        mb(joined_rss),
        grown / 1024.0 / args.users as f64,
    );

    let (members, latencies) = relay(members, args).await?;
    println!(
        "relay: {} signals at {}/s over {} pairs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        args.relay_rate,
        args.relay_pairs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );

    leave(members).await;
    tokio::time::sleep(SETTLE).await;
    let left_rss = rss_of(servers)?;
    println!(
        "memory: RSS {:.1} MB after everyone left ({:+.1} MB from the start)",
        mb(left_rss),
        (left_rss as f64 - baseline as f64) / 1e6
    );
    Ok(Figures {
        joins_per_sec: args.users as f64 / joined_in.as_secs_f64(),
        welcome_p99: percentile(&welcomes, 0.99),
        relay_p50: percentile(&latencies, 0.50),
        relay_p99: percentile(&latencies, 0.99),
        joined_rss,
        kib_per_connection: grown / 1024.0 / args.users as f64,
    })
}

/// Connects and joins the whole crowd at once; returns everyone once each has the full
/// list, how long that took, and each member's wait for its welcome in milliseconds.
async fn join_crowd(
    servers: &[Server],
    args: &Args,
    spread: Spread,
) -> Result<(Vec<Member>, Duration, Vec<f64>)> {
    let started = Instant::now();
    let connecting = Arc::new(Semaphore::new(args.connecting));
    let (done, mut finished) = mpsc::unbounded_channel();
    for index in 0..args.users {
        let instance = index % servers.len();
        let (url, connecting, done) = (
            servers[instance].url.clone(),
            Arc::clone(&connecting),
            done.clone(),
        );
        let users = args.users;
        tokio::spawn(async move {
            let joined = join_one(&url, index, users, spread, &connecting).await;
            let _ = done.send(joined.map(|(mut member, after)| {
                member.instance = instance;
                (member, after)
            }));
        });
    }
    drop(done);
    let mut members = Vec::with_capacity(args.users);
    let mut welcomes = Vec::with_capacity(args.users);
    while let Some(member) = finished.recv().await {
        let (member, welcomed_after) = member?;
        members.push(member);
        welcomes.push(welcomed_after.as_secs_f64() * 1000.0);
    }
    Ok((members, started.elapsed(), welcomes))
}

/// One member: connects, joins its place, and reads until it knows everyone there; returns it and how
/// long its welcome took after its join was sent. It counts users rather than parsing every
/// list, so the crowd does not need more CPU than the server: a welcome lists everyone
/// announced before it, and each announcement who came and went since. A refusal, or any
/// message but these, fails the run.
async fn join_one(
    url: &str,
    index: usize,
    users: usize,
    spread: Spread,
    connecting: &Semaphore,
) -> Result<(Member, Duration)> {
    let together = spread.together(index, users);
    let socket = {
        let _turn = connecting.acquire().await?;
        tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("user {index} connecting"))?
            .0
    };
    let (mut write, mut read) = socket.split();
    let join = ClientMessage::Join {
        version: PROTOCOL_VERSION,
        nick: format!("user{index}"),
        token: None,
        place: spread.place(index),
    };
    write
        .send(Message::text(serde_json::to_string(&join)?))
        .await?;
    let sent = Instant::now();
    let mut welcomed_after = None;
    let mut id = None;
    let mut known: i64 = 0;
    while known < together as i64 {
        let text = match read.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => bail!("user {index} was cut off: {other:?}"),
        };
        if let Some(welcome) = text.strip_prefix(r#"{"type":"welcome","id":""#) {
            welcomed_after = Some(sent.elapsed());
            known += entries(welcome.as_bytes());
            let me = welcome.split('"').next().context("the welcome's id")?;
            id = Some(PeerId::parse(me)?);
        } else if let Some(changes) = text.strip_prefix(r#"{"type":"users_changed""#) {
            let (joined, left) = changes.split_once(r#""left":"#).unwrap_or((changes, ""));
            known += entries(joined.as_bytes());
            known -= count(left.as_bytes(), b',') + i64::from(!left.is_empty());
        } else {
            bail!("user {index} got an unexpected message: {text}");
        }
    }
    let id = id.context("no welcome")?;
    let welcomed_after = welcomed_after.context("no welcome")?;
    let room = spread.room_of(index);
    Ok((
        Member {
            id,
            room,
            instance: 0,
            write,
            read,
        },
        welcomed_after,
    ))
}

/// How many users a piece of a welcome or announcement lists: every entry is an object, and
/// the crowd's nicks hold no braces, so each opening brace after the message's own is one.
/// Counting bytes keeps the crowd's own CPU far below the server's: a crowd of 10,000 reads
/// some 7 GB of lists.
fn entries(listing: &[u8]) -> i64 {
    count(listing, b'{')
}

/// How many times `byte` occurs in `bytes`.
fn count(bytes: &[u8], byte: u8) -> i64 {
    bytes.iter().filter(|&&b| b == byte).count() as i64
}

/// Pairs of members send each other signals at `relay_rate` in all for `relay_secs`; returns
/// everyone and the sorted latencies in milliseconds.
async fn relay(mut members: Vec<Member>, args: &Args) -> Result<(Vec<Member>, Vec<f64>)> {
    let pairs = args.relay_pairs;
    let per_sender = f64::from(args.relay_rate) / pairs as f64;
    let interval = Duration::from_secs_f64(1.0 / per_sender);
    let count = (per_sender * args.relay_secs as f64).ceil() as usize;
    let clock = Instant::now();
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    // Pairs are made within a room (a signal to someone elsewhere would be refused), and
    // across two instances when there are several: each pair's signals then go through Redis.
    members.sort_by_key(|member| (member.room, member.instance));
    let mut paired = Vec::with_capacity(pairs * 2);
    let mut rest = Vec::new();
    let mut members = members.into_iter().peekable();
    while let Some(first) = members.next() {
        let room = first.room;
        let mut group = vec![first];
        while let Some(next) = members.next_if(|next| next.room == room) {
            group.push(next);
        }
        pair_up(group, pairs * 2, &mut paired, &mut rest);
    }
    ensure!(
        paired.len() == pairs * 2,
        "too few members in one room for the pairs"
    );
    let mut pair_members = paired.into_iter();
    while let (Some(sender), Some(receiver)) = (pair_members.next(), pair_members.next()) {
        let received = Arc::clone(&received);
        tasks.spawn(async move {
            let Member {
                id: sender_id,
                room,
                instance: sender_instance,
                write: mut sender_write,
                read: sender_read,
            } = sender;
            let Member {
                id: receiver_id,
                instance: receiver_instance,
                write: receiver_write,
                read: mut receiver_read,
                ..
            } = receiver;
            let sending = async {
                let mut ticks = tokio::time::interval(interval);
                for _ in 0..count {
                    ticks.tick().await;
                    let sent_at = clock.elapsed().as_micros();
                    let signal = ClientMessage::Signal {
                        to: receiver_id.clone(),
                        payload: SignalPayload::Offer {
                            sdp: sent_at.to_string(),
                        },
                        lane: 0,
                    };
                    sender_write
                        .send(Message::text(serde_json::to_string(&signal)?))
                        .await?;
                }
                anyhow::Ok(())
            };
            let receiving = async {
                let mut latencies = Vec::with_capacity(count);
                while latencies.len() < count {
                    let Some(Ok(Message::Text(text))) = receiver_read.next().await else {
                        bail!("a receiver was cut off");
                    };
                    if let ServerMessage::Signal {
                        payload: SignalPayload::Offer { sdp },
                        ..
                    } = serde_json::from_str(&text)?
                    {
                        let sent_at: u128 = sdp.parse()?;
                        let now = clock.elapsed().as_micros();
                        latencies.push((now - sent_at) as f64 / 1000.0);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(latencies)
            };
            let ((), latencies) = tokio::try_join!(sending, receiving)?;
            let members = [
                Member {
                    id: sender_id,
                    room,
                    instance: sender_instance,
                    write: sender_write,
                    read: sender_read,
                },
                Member {
                    id: receiver_id,
                    room,
                    instance: receiver_instance,
                    write: receiver_write,
                    read: receiver_read,
                },
            ];
            anyhow::Ok((members, latencies))
        });
    }
    let mut everyone = rest;
    let mut latencies = Vec::new();
    while let Some(pair) = tasks.join_next().await {
        let (members, pair_latencies) = pair??;
        everyone.extend(members);
        latencies.extend(pair_latencies);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((everyone, latencies))
}

/// Pairs members of one room (sorted by instance) into `paired`, sender then receiver, until
/// it holds `wanted`; each pair's two are on different instances when the room has more than
/// one. Whoever is left goes to `rest`.
fn pair_up(group: Vec<Member>, wanted: usize, paired: &mut Vec<Member>, rest: &mut Vec<Member>) {
    let half = group.len() / 2;
    let mut group: Vec<Option<Member>> = group.into_iter().map(Some).collect();
    // With members sorted by instance, the one half-way along is on another instance as
    // long as no instance holds more than half of the room.
    for first in 0..half {
        if paired.len() >= wanted {
            break;
        }
        if let (Some(sender), Some(receiver)) = (group[first].take(), group[first + half].take()) {
            paired.push(sender);
            paired.push(receiver);
        }
    }
    rest.extend(group.into_iter().flatten());
}

/// Everyone closes their connection cleanly, as a closing tab does.
async fn leave(members: Vec<Member>) {
    let mut tasks = tokio::task::JoinSet::new();
    for member in members {
        tasks.spawn(async move {
            let mut write = member.write;
            let _ = write.send(Message::Close(None)).await;
            let _ = write.close().await;
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The CPU seconds process `pid` (or `self`) has used, user and system, from /proc.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("a stat line")?
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// The value at `quantile` of sorted `values`.
fn percentile(values: &[f64], quantile: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let at = ((values.len() - 1) as f64 * quantile).round() as usize;
    values[at]
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The server binary, run with limits that let a crowd from one address in.
struct Server {
    child: Child,
    pid: u32,
    url: String,
}

impl Server {
    /// Starts the binary; with `redis`, as one instance of the service on it.
    async fn start(args: &Args, redis: Option<&str>) -> Result<Self> {
        let binary = args.server.clone().unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/release/ferry-signaling"
            ))
        });
        ensure!(
            binary.is_file(),
            "{} is missing: build it with `cargo build --release -p ferry-signaling`",
            binary.display()
        );
        let capacity = (args.users * 2 + 100).to_string();
        let mut command = Command::new(&binary);
        if let Some(url) = redis {
            command.args(["--redis", url]);
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--quiet"])
            .args(["--max-connections-per-ip", &capacity])
            .args(["--max-connections", &capacity])
            .args(["--max-sessions-per-ip", &capacity])
            // The relay phase sends faster per connection than a browser would.
            .args(["--messages-per-sec", "1000", "--message-burst", "1000"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the server is running")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next_line()
            .await?
            .context("the server printed nothing")?;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .with_context(|| format!("no address in {line:?}"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            url: format!("ws://{addr}/ws"),
        })
    }

    /// The CPU seconds the server has used, user and system, from /proc.
    fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(&self.pid.to_string())
    }

    /// The server's resident memory in bytes, from /proc.
    fn rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS line")?;
        Ok(kib * 1024)
    }

    async fn stop(mut self) -> Result<()> {
        let pid = self.pid.to_string();
        Command::new("kill").args(["-TERM", &pid]).status().await?;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await??;
        ensure!(status.success(), "the server exited with {status}");
        Ok(())
    }
}
