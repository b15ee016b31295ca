//! Ferry's throughput benchmark: Ana sends Bo one large random file, browser to browser, and
//! this prints how fast it went, how much private memory each side's renderer (the page's
//! process) used, and how many CPU seconds each kind of browser process spent on it — on two cores, CPU
//! per byte is what sets the speed.
//!
//! Each run measures every mode of `--modes` one after another under the same conditions, so
//! ratios are same-run: `ferry` (the app), `bare1` (a bare RTCDataChannel on one peer
//! connection, the ceiling a single connection allows), `bareN` (bare channels on N peer
//! connections). `--rtt-ms`, `--loss-pct` and `--rate-mbit` put an emulated wide-area link
//! between the browsers; `--sender` and `--receiver` pick Chromium or Firefox; `--relayed`
//! sends through coturn. `--folder-files N` sends a folder of N small files instead, and times
//! Accept to the folder's zip ([`folder`]). `--page-load` times the page itself on a slow phone
//! connection instead ([`page`]).
//!
//! It reuses the end-to-end harness (the real server in-process, one browser per person over
//! WebDriver, the file generator and the download check) but asserts no timing: it measures.
//! Each measurement starts fresh browsers, so one's leftovers cannot weigh on the next.
//!
//! Run it in a loopback-only network namespace, after `trunk build --release`:
//! `unshare -n sh -c 'ip link set lo up && ip addr add 10.77.0.1/32 dev lo && cargo run
//! --release -p ferry-e2e --bin ferry-bench -- --size-mib 256 --rtt-ms 20 --modes
//! ferry,bare1,bare4'` (the private address is for `--relayed`).

mod bare;
mod folder;
mod marks;
mod page;
mod sampler;
mod terminal;

use std::fs;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use ferry_e2e::wan::Link;
use ferry_e2e::{
    Harness, Kind, PRIVATE_IP, Relay, Setup, SourceFile, User, default_static_dir,
    finished_download, random_file,
};
use ferry_signaling::{IceConfig, TurnRest, TurnSecret};
use serde_json::Value;

use crate::marks::Waits;
use crate::sampler::{Sampler, Usage, Watched};

/// The secret `--relayed` shares between the server and coturn.
const RELAY_SECRET: &str = "ferry-bench-relay-secret";

/// How often the benchmark asks Bo's page whether the transfer ended. The end time itself is
/// taken inside the page, so this only bounds how late the benchmark notices; asking rarely
/// keeps WebDriver traffic from taking CPU away from the transfer it measures.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Installed in Bo's page before Accept is pressed: records, on the page's own clock, when the
/// Accept button is clicked and when a transfer row first shows a final status.
///
/// The end is seen by a `MutationObserver`, at the moment the page changes, rather than by
/// polling over WebDriver, whose every query costs the renderer the CPU being measured. A row is
/// an item holding a progress bar, as in the harness, and its status is a leaf element whose
/// text starts with one of the final statuses.
const TIMER: &str = r#"
const bench = { accepted: null, ended: null, status: null };
window.__ferryBench = bench;
document.addEventListener('click', (event) => {
  const button = event.target.closest('button, [role=button]');
  if (bench.accepted === null && button && button.textContent.trim() === 'Accept') {
    bench.accepted = performance.now();
  }
}, true);
const finals = ['Complete', 'Declined', 'Cancelled', 'Failed: '];
const rows = 'li, tr, [role=listitem], [role=row]';
const bars = 'progress, [role=progressbar]';
new MutationObserver(() => {
  if (bench.accepted === null || bench.ended !== null) return;
  for (const row of document.querySelectorAll(rows)) {
    if (!row.querySelector(bars)) continue;
    for (const leaf of row.querySelectorAll('*')) {
      if (leaf.childElementCount > 0) continue;
      const text = leaf.textContent.trim();
      if (finals.some((status) => text.startsWith(status))) {
        bench.ended = performance.now();
        bench.status = text;
        return;
      }
    }
  }
}).observe(document.body, { subtree: true, childList: true, characterData: true });
"#;

/// Sends one large file from Ana to Bo and reports MB/s (10^6 bytes per second, from Bo
/// pressing Accept to Bo's row showing "Complete"; for the bare channels, from the first byte
/// to the last) and the peak private memory (resident anonymous and shared pages) of each
/// side's renderer, per run and as medians.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Args {
    /// Size of the file to send, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// How many runs; each measures every mode, and the medians are printed last.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// What to measure in each run, in order: ferry, bare1, bare2, …, cli, cli-to-browser,
    /// browser-to-cli.
    #[arg(long, value_delimiter = ',', default_value = "ferry,bare1")]
    modes: Vec<Mode>,
    /// The trunk-built app to serve [default: <repo>/dist].
    #[arg(long)]
    dist: Option<PathBuf>,
    /// The sender's browser: chromium or firefox.
    #[arg(long, default_value = "chromium")]
    sender: Kind,
    /// The receiver's browser: chromium or firefox.
    #[arg(long, default_value = "chromium")]
    receiver: Kind,
    /// An emulated wide-area link with this round trip, in milliseconds.
    #[arg(long, default_value_t = 0)]
    rtt_ms: u64,
    /// The share of packets the link loses, in percent.
    #[arg(long, default_value_t = 0.0)]
    loss_pct: f64,
    /// The link's rate each way, in megabits per second.
    #[arg(long)]
    rate_mbit: Option<f64>,
    /// Send through a TURN relay: Debian's coturn, started here on 10.77.0.1 (an address
    /// `./test.sh` gives its network namespace), with both browsers relay-only.
    #[arg(long)]
    relayed: bool,
    /// Instead of one large file, send a folder of this many small files, and time Accept to
    /// the folder's zip being ready.
    #[arg(long)]
    folder_files: Option<usize>,
    /// The size of each file of `--folder-files`, in bytes.
    #[arg(long, default_value_t = 1024)]
    file_bytes: usize,
    /// Instead of a transfer, time Ferry's page on a throttled connection: first text and
    /// interactive page, first and repeat visit, and the bytes each took.
    #[arg(long)]
    page_load: bool,
    /// `--page-load`'s connection speed, in kilobits per second.
    #[arg(long, default_value_t = 1600)]
    throttle_kbit: u64,
    /// `--page-load`'s added latency, in milliseconds.
    #[arg(long, default_value_t = 150)]
    throttle_latency_ms: u64,
    /// Give up on a transfer that has not ended after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

/// One kind of measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Ferry itself.
    Ferry,
    /// Bare channels on this many peer connections.
    Bare(usize),
    /// `ferry`, the command-line peer, at one end or both.
    Cli(terminal::Route),
}

impl FromStr for Mode {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "ferry" => Ok(Self::Ferry),
            "cli" => Ok(Self::Cli(terminal::Route::Both)),
            "cli-to-browser" => Ok(Self::Cli(terminal::Route::ToBrowser)),
            "browser-to-cli" => Ok(Self::Cli(terminal::Route::FromBrowser)),
            bare => match bare.strip_prefix("bare").map(str::parse) {
                Some(Ok(count)) if count > 0 => Ok(Self::Bare(count)),
                _ => bail!(
                    "{name:?} is not a mode: ferry, bare1, bare2, …, cli, cli-to-browser, \
                     browser-to-cli"
                ),
            },
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ferry => f.write_str("ferry"),
            Self::Bare(count) => write!(f, "bare{count}"),
            Self::Cli(terminal::Route::Both) => f.write_str("cli"),
            Self::Cli(terminal::Route::ToBrowser) => f.write_str("cli>br"),
            Self::Cli(terminal::Route::FromBrowser) => f.write_str("br>cli"),
        }
    }
}

/// What one transfer measured.
#[derive(Debug)]
pub(crate) struct Run {
    /// From Bo pressing Accept to Bo's row showing "Complete".
    seconds: f64,
    /// What Bo's browser used meanwhile.
    receiver: Usage,
    /// What Ana's browser used meanwhile.
    sender: Usage,
    /// The machine's one-minute load average when the transfer ended.
    load: f64,
    /// How long Ana waited for the connection and Bo for the first byte; Ferry runs only.
    waits: Option<Waits>,
    /// Over how many peer connections Ferry striped the transfer, as Bo's row says.
    lanes: Option<usize>,
}

impl Run {
    /// A run without the app's waits and lanes (a bare channel's, or `ferry`'s).
    pub(crate) fn plain(seconds: f64, receiver: Usage, sender: Usage, load: f64) -> Self {
        Self {
            seconds,
            receiver,
            sender,
            load,
            waits: None,
            lanes: None,
        }
    }
}

#[tokio::main]
async fn main() {
    if let Err(error) = bench(Args::parse()).await {
        eprintln!("ferry-bench: {error:#}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    if args.page_load {
        return page::bench(&args).await;
    }
    if let Some(count) = args.folder_files {
        return bench_folder(&args, count).await;
    }
    ensure!(!args.modes.is_empty(), "--modes names nothing to measure");
    let dist = args.dist.clone().unwrap_or_else(default_static_dir);
    let len = args.size_mib << 20;
    let files = tempfile::Builder::new().prefix("ferry-bench-").tempdir()?;
    let name = format!("bench-{}MiB.bin", args.size_mib);
    // The bare channels send bytes they make themselves, so only Ferry needs a file.
    let file = if args
        .modes
        .iter()
        .any(|mode| matches!(mode, Mode::Ferry | Mode::Cli(_)))
    {
        eprintln!("writing {len} random bytes to {name}");
        Some(random_file(files.path(), &name, len, 0xfe22).await?)
    } else {
        None
    };
    let relay = if args.relayed {
        Some(Relay::start(PRIVATE_IP, RELAY_SECRET).await?)
    } else {
        None
    };
    let setup = setup(&args, relay.as_ref());
    println!(
        "from {} to {}{}{}, served from {}; {} MiB = {len} bytes; MB = 10^6 bytes",
        args.sender,
        args.receiver,
        if args.relayed {
            ", relayed by coturn"
        } else {
            ""
        },
        link_text(&args),
        dist.display(),
        args.size_mib
    );
    println!(
        "run  mode      MB/s  seconds  receiver peak (idle) MB  sender peak (idle) MB  load 1m"
    );
    let mut results: Vec<(Mode, Run)> = Vec::new();
    for index in 1..=args.runs {
        for &mode in &args.modes {
            let harness = Harness::serving(dist.clone(), setup.clone()).await?;
            let timeout = Duration::from_secs(args.timeout_secs);
            let result = match (mode, &file) {
                (Mode::Ferry, Some(file)) => one_run(&harness, &args, file, timeout).await,
                (Mode::Bare(count), _) => bare::run(&harness, &args, count, len, timeout).await,
                (Mode::Cli(route), Some(file)) => {
                    terminal::run(&harness, &args, route, file, timeout).await
                }
                (Mode::Ferry | Mode::Cli(_), None) => {
                    unreachable!("a file is made when Ferry is measured")
                }
            };
            harness.finish(result.is_err()).await;
            let run = result.with_context(|| format!("run {index}, {mode}"))?;
            print_run(&index.to_string(), mode, len, &run);
            results.push((mode, run));
        }
    }
    for &mode in &args.modes {
        let runs: Vec<&Run> = results
            .iter()
            .filter(|(of, _)| *of == mode)
            .map(|(_, run)| run)
            .collect();
        let seconds = median(runs.iter().map(|run| run.seconds));
        println!(
            "med  {mode:<7} {:>6.1}  {:>7.1}  {:>12}         {:>10}         {:>18.2}",
            mb_per_s(len, seconds),
            seconds,
            mb(median(runs.iter().map(|run| run.receiver.memory.peak as f64)) as u64),
            mb(median(runs.iter().map(|run| run.sender.memory.peak as f64)) as u64),
            median(runs.iter().map(|run| run.load)),
        );
    }
    Ok(())
}

/// Sends a folder of `count` small files, `--runs` times.
async fn bench_folder(args: &Args, count: usize) -> Result<()> {
    let dist = args.dist.clone().unwrap_or_else(default_static_dir);
    let tree = folder::folder_tree(count, args.file_bytes);
    println!(
        "a folder of {count} files of {} bytes, from {} to {}{}; seconds from Accept to the zip",
        args.file_bytes,
        args.sender,
        args.receiver,
        link_text(args)
    );
    println!("run  seconds  files/s  receiver peak (idle) MB  sender peak (idle) MB");
    let mut seconds = Vec::new();
    for index in 1..=args.runs {
        let files = tempfile::Builder::new().prefix("ferry-folder-").tempdir()?;
        let harness = Harness::serving(dist.clone(), setup(args, None)).await?;
        let timeout = Duration::from_secs(args.timeout_secs);
        let result = folder::run(&harness, args, files.path(), &tree, timeout).await;
        harness.finish(result.is_err()).await;
        let run = result.with_context(|| format!("run {index}"))?;
        println!(
            "{index:>3}  {:>7.1}  {:>7.0}  {:>12} ({:>4})  {:>10} ({:>4})",
            run.seconds,
            count as f64 / run.seconds,
            mb(run.receiver.memory.peak),
            mb(run.receiver.memory.first),
            mb(run.sender.memory.peak),
            mb(run.sender.memory.first),
        );
        print_quarters(&run.receiver, &run.sender);
        print_cpu(&run.receiver, &run.sender);
        seconds.push(run.seconds);
    }
    println!("med  {:>7.1}", median(seconds.into_iter()));
    Ok(())
}

/// The server's setup for these arguments: a relay, an emulated link, or neither.
fn setup(args: &Args, relay: Option<&Relay>) -> Setup {
    let ice = match relay {
        Some(relay) => IceConfig {
            fixed: Vec::new(),
            turn: Some(TurnRest {
                urls: vec![relay.url()],
                secret: TurnSecret::new(RELAY_SECRET),
                ttl: Duration::from_secs(24 * 3600),
            }),
            relay_only: true,
        },
        None => IceConfig::default(),
    };
    let emulated = args.rtt_ms > 0 || args.loss_pct > 0.0 || args.rate_mbit.is_some();
    let wan = emulated.then(|| Link {
        rtt: Duration::from_millis(args.rtt_ms),
        jitter: Duration::ZERO,
        loss: args.loss_pct / 100.0,
        rate: args.rate_mbit.map(|mbit| (mbit * 1e6 / 8.0) as u64),
    });
    Setup {
        ice,
        wan,
        ..Setup::default()
    }
}

/// The emulated link, as the header line says it.
fn link_text(args: &Args) -> String {
    let mut parts = Vec::new();
    if args.rtt_ms > 0 {
        parts.push(format!("{} ms round trip", args.rtt_ms));
    }
    if args.loss_pct > 0.0 {
        parts.push(format!("{} % loss", args.loss_pct));
    }
    if let Some(rate) = args.rate_mbit {
        parts.push(format!("{rate} Mbit/s"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", over a link of {}", parts.join(", "))
    }
}

fn print_run(label: &str, mode: Mode, len: u64, run: &Run) {
    println!(
        "{label:>3}  {:<7} {:>6.1}  {:>7.1}  {:>12} ({:>4})  {:>10} ({:>4})  {:>18.2}",
        mode.to_string(),
        mb_per_s(len, run.seconds),
        run.seconds,
        mb(run.receiver.memory.peak),
        mb(run.receiver.memory.first),
        mb(run.sender.memory.peak),
        mb(run.sender.memory.first),
        run.load
    );
    if let (Some(waits), Some(lanes)) = (run.waits, run.lanes) {
        println!(
            "       {lanes} connection(s); waits: Send to connection open {:.0} ms, \
             Accept to first byte {:.0} ms",
            waits.send_to_open, waits.accept_to_first_byte
        );
    }
    print_quarters(&run.receiver, &run.sender);
    print_cpu(&run.receiver, &run.sender);
}

/// Each side's peak memory in each quarter of the transfer: flat memory reads alike.
fn print_quarters(receiver: &Usage, sender: &Usage) {
    let text = |usage: &Usage| {
        let peaks: Vec<String> = usage
            .memory
            .quarters
            .iter()
            .map(|&bytes| mb(bytes).to_string())
            .collect();
        peaks.join(" ")
    };
    println!(
        "       peak MB by quarter: receiver {}; sender {}",
        text(receiver),
        text(sender)
    );
}

/// Each side's CPU seconds, per kind of browser process.
fn print_cpu(receiver: &Usage, sender: &Usage) {
    for (side, usage) in [("receiver", receiver), ("sender", sender)] {
        let cpu: Vec<String> = usage
            .cpu_seconds()
            .iter()
            .map(|(role, seconds)| format!("{role} {seconds:.1}"))
            .collect();
        println!("       CPU s, {side}: {}", cpu.join(", "));
    }
}

/// One transfer between two fresh browsers, checked byte for byte on Bo's disk.
async fn one_run(
    harness: &Harness,
    args: &Args,
    file: &SourceFile,
    timeout: Duration,
) -> Result<Run> {
    let (ana, bo) = harness.ana_and_bo_in(args.sender, args.receiver).await?;
    ana.send("bo", &[file]).await?;
    let (seconds, [receiver, sender]) = accept_timed(&bo, Watched::of(&ana), timeout).await?;

    // The page's word is checked against what a person sees, and the bytes against the source,
    // so a fast but wrong transfer cannot pass for a result.
    bo.wait_status(&file.name, "Complete", |status| status == "Complete")
        .await?;
    let saved = finished_download(bo.downloads(), &file.name).await?;
    let saved_len = fs::metadata(&saved)?.len();
    ensure!(
        saved_len == file.len,
        "Bo saved {saved_len} bytes of the {} sent",
        file.len
    );
    file.check_received(&saved).await?;
    Ok(Run {
        seconds,
        receiver,
        sender,
        load: load_average()?,
        waits: Some(Waits::read(&ana, &bo).await?),
        lanes: bo.connections(&file.name).await?,
    })
}

/// Waits for the offer on Bo's page, presses Accept and waits for "Complete", sampling Bo's
/// browser and the sender meanwhile; returns the page's seconds from Accept to the end, and
/// what each side used.
pub(crate) async fn accept_timed(
    bo: &User,
    sender: Watched,
    timeout: Duration,
) -> Result<(f64, [Usage; 2])> {
    bo.incoming_offer().await?;
    bo.client().execute(TIMER, vec![]).await?;
    let sampler = Sampler::watching([Watched::of(bo), sender]);
    let ended = async {
        bo.accept().await?;
        wait_for_end(bo, timeout).await
    }
    .await;
    let usage = sampler.stop().await?;
    let (seconds, status) = ended?;
    ensure!(status == "Complete", "the transfer ended as {status:?}");
    Ok((seconds, usage))
}

/// Waits until the timer in Bo's page saw a final status, and returns the seconds from Accept
/// to it and the status.
async fn wait_for_end(bo: &User, timeout: Duration) -> Result<(f64, String)> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let bench = bo
            .client()
            .execute("return window.__ferryBench;", vec![])
            .await?;
        if let (Some(accepted), Some(ended)) = (bench["accepted"].as_f64(), bench["ended"].as_f64())
        {
            let status = bench["status"].as_str().unwrap_or_default().to_owned();
            return Ok(((ended - accepted) / 1000.0, status));
        }
        if bench["accepted"] == Value::Null {
            bail!("the page saw no click on Accept");
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the transfer did not end within {timeout:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The one-minute load average, which says how much else competed for the two cores.
pub(crate) fn load_average() -> Result<f64> {
    let loadavg = fs::read_to_string("/proc/loadavg")?;
    let first = loadavg
        .split_whitespace()
        .next()
        .context("empty /proc/loadavg")?;
    Ok(first.parse()?)
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

fn mb(bytes: u64) -> u64 {
    bytes / 1_000_000
}

/// The median of `values`, the mean of the middle two for an even count.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}
