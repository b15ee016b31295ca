//! Ferry's throughput benchmark: Ana sends Bo one large random file, browser to browser, and this
//! prints how fast it went, how much memory each side's renderer (the page's process) used, and
//! how many CPU seconds each kind of browser process spent on it — on two cores, CPU per byte
//! is what sets the speed. `--raw` times a bare RTCDataChannel between the same browsers
//! instead: the ceiling, under the same load. `--sender` and `--receiver` pick Chromium or
//! Firefox for each side.
//!
//! It reuses the end-to-end harness (the real server in-process, one browser per person over
//! WebDriver, the file generator and the download check) but asserts no timing: it measures.
//! Each run starts fresh browsers, so one run's leftovers cannot weigh on the next one's memory.
//!
//! Run it in a loopback-only network namespace, after `trunk build --release`:
//! `unshare -n sh -c 'ip link set lo up && ip addr add 10.77.0.1/32 dev lo && cargo run
//! --release -p ferry-e2e --bin ferry-bench -- --size-mib 1024'` (the private address is for
//! `--relayed`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use ferry_e2e::{
    Harness, Kind, PRIVATE_IP, Relay, Setup, SourceFile, User, default_static_dir,
    finished_download, random_file,
};
use ferry_signaling::{IceConfig, TurnRest, TurnSecret};
use serde_json::Value;

/// The secret `--relayed` shares between the server and coturn.
const RELAY_SECRET: &str = "ferry-bench-relay-secret";

/// How often the renderers' memory is read during a transfer.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// How often /proc is searched again for browser processes that started since; they come and go
/// rarely, and a full scan costs more than reading a few known processes.
const RESCAN_EVERY: u32 = 10;

/// The unit of CPU times in /proc: `sysconf(_SC_CLK_TCK)`, 100 on every Linux Chromium runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

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

/// Prepended to the offer and answer scripts: a peer connection's local description once every
/// ICE candidate is in it, so the two browsers can trade complete descriptions by WebDriver.
const GATHERED_SDP: &str = r#"
async function gatheredSdp(pc) {
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((done) => {
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') done();
      });
    });
  }
  return pc.localDescription.sdp;
}
"#;

/// Run in Ana's page with `--raw`: opens a bare data channel and returns the offer, once every
/// ICE candidate is in it, so the benchmark can hand it to Bo by WebDriver with no server.
const RAW_OFFER: &str = r#"
const pc = new RTCPeerConnection();
const channel = pc.createDataChannel('raw', { ordered: true });
window.__ferryRaw = { pc, channel };
await pc.setLocalDescription(await pc.createOffer());
return await gatheredSdp(pc);
"#;

/// Run in Bo's page with `--raw`: answers the offer and counts what arrives, discarding it, on
/// the page's own clock from the first message to the last.
const RAW_ANSWER: &str = r#"
const [offer, total] = arguments;
const pc = new RTCPeerConnection();
const raw = { pc, received: 0, start: null, end: null };
window.__ferryRaw = raw;
pc.addEventListener('datachannel', ({ channel }) => {
  channel.binaryType = 'arraybuffer';
  channel.addEventListener('message', ({ data }) => {
    if (raw.start === null) raw.start = performance.now();
    raw.received += data.byteLength;
    if (raw.received >= total && raw.end === null) raw.end = performance.now();
  });
});
await pc.setRemoteDescription({ type: 'offer', sdp: offer });
await pc.setLocalDescription(await pc.createAnswer());
return await gatheredSdp(pc);
"#;

/// Run in Ana's page with `--raw`: takes the answer and, once the channel is open, sends
/// `total` bytes in 256 KiB messages, waiting above 8 MiB queued until half of it is gone —
/// Ferry's chunk size and high-water mark, so the two differ only in what Ferry adds.
const RAW_SEND: &str = r#"
const [answer, total] = arguments;
const { pc, channel } = window.__ferryRaw;
await pc.setRemoteDescription({ type: 'answer', sdp: answer });
if (channel.readyState !== 'open') {
  await new Promise((done) => channel.addEventListener('open', done, { once: true }));
}
const chunk = new Uint8Array(256 * 1024);
for (let at = 0; at < chunk.length; at += 65536) {
  crypto.getRandomValues(chunk.subarray(at, at + 65536));
}
const high = 8 * 1024 * 1024;
channel.bufferedAmountLowThreshold = high / 2;
(async () => {
  for (let sent = 0; sent < total; ) {
    if (channel.bufferedAmount > high) {
      await new Promise((done) =>
        channel.addEventListener('bufferedamountlow', done, { once: true }));
    }
    const length = Math.min(chunk.length, total - sent);
    channel.send(length === chunk.length ? chunk : chunk.subarray(0, length));
    sent += length;
  }
})();
"#;

/// Sends one large file from Ana to Bo in two real Chromium sessions and reports MB/s (10^6
/// bytes per second, from Bo pressing Accept to Bo's row showing "Complete") and the peak
/// memory of each side's renderer, per run and as the median over runs.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Size of the file to send, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// How many transfers to time; the median of them is printed last.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The trunk-built app to serve [default: <repo>/dist].
    #[arg(long)]
    dist: Option<PathBuf>,
    /// Instead of Ferry, time a bare RTCDataChannel between the same two browsers, sending as
    /// many bytes as fast as it takes them and discarding them: the ceiling Ferry is measured
    /// against, taken under the same load as Ferry's figures. It is timed from the first
    /// message received to the last.
    #[arg(long)]
    raw: bool,
    /// Send through a TURN relay: Debian's coturn, started here on 10.77.0.1 (an address
    /// `./test.sh` gives its network namespace), with both browsers relay-only.
    #[arg(long, conflicts_with = "raw")]
    relayed: bool,
    /// The sender's browser: chromium or firefox.
    #[arg(long, default_value = "chromium")]
    sender: Kind,
    /// The receiver's browser: chromium or firefox.
    #[arg(long, default_value = "chromium")]
    receiver: Kind,
    /// Give up on a transfer that has not ended after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

/// What one transfer measured.
#[derive(Debug)]
struct Run {
    /// From Bo pressing Accept to Bo's row showing "Complete".
    seconds: f64,
    /// What Bo's browser used meanwhile.
    receiver: Usage,
    /// What Ana's browser used meanwhile.
    sender: Usage,
    /// The machine's one-minute load average when the transfer ended.
    load: f64,
}

/// Peak and first-seen resident sizes of one browser's largest renderer, in bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    first: u64,
    peak: u64,
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
    let dist = args.dist.clone().unwrap_or_else(default_static_dir);
    let len = args.size_mib << 20;
    let files = tempfile::Builder::new().prefix("ferry-bench-").tempdir()?;
    let name = format!("bench-{}MiB.bin", args.size_mib);
    // The bare channel sends bytes it makes itself, so it needs no file.
    let file = if args.raw {
        None
    } else {
        eprintln!("writing {len} random bytes to {name}");
        Some(random_file(files.path(), &name, len, 0xfe22).await?)
    };

    let what = if args.raw {
        "a bare RTCDataChannel, not Ferry,"
    } else if args.relayed {
        "Ferry, relayed by coturn,"
    } else {
        "Ferry"
    };
    let relay = if args.relayed {
        Some(Relay::start(PRIVATE_IP, RELAY_SECRET).await?)
    } else {
        None
    };
    let setup = match &relay {
        Some(relay) => Setup {
            ice: IceConfig {
                fixed: Vec::new(),
                turn: Some(TurnRest {
                    urls: vec![relay.url()],
                    secret: TurnSecret::new(RELAY_SECRET),
                    ttl: Duration::from_secs(24 * 3600),
                }),
                relay_only: true,
            },
            ..Setup::default()
        },
        None => Setup::default(),
    };
    println!(
        "{what} from {} to {}, served from {}; {} MiB = {len} bytes; MB = 10^6 bytes",
        args.sender,
        args.receiver,
        dist.display(),
        args.size_mib
    );
    println!("run    MB/s  seconds  receiver peak (idle) MB  sender peak (idle) MB  load 1m");
    let mut runs = Vec::new();
    for index in 1..=args.runs {
        let harness = Harness::serving(dist.clone(), setup.clone()).await?;
        let timeout = Duration::from_secs(args.timeout_secs);
        let result = match &file {
            Some(file) => one_run(&harness, &args, file, timeout).await,
            None => raw_run(&harness, &args, len, timeout).await,
        };
        harness.finish(result.is_err()).await;
        let run = result.with_context(|| format!("run {index}"))?;
        println!(
            "{index:>3}  {:>6.1}  {:>7.1}  {:>12} ({:>4})  {:>10} ({:>4})  {:>18.2}",
            mb_per_s(len, run.seconds),
            run.seconds,
            mb(run.receiver.memory.peak),
            mb(run.receiver.memory.first),
            mb(run.sender.memory.peak),
            mb(run.sender.memory.first),
            run.load
        );
        for (side, usage) in [("receiver", &run.receiver), ("sender", &run.sender)] {
            let cpu: Vec<String> = usage
                .cpu_seconds()
                .iter()
                .map(|(role, seconds)| format!("{role} {seconds:.1}"))
                .collect();
            println!("       CPU s, {side}: {}", cpu.join(", "));
        }
        runs.push(run);
    }
    let seconds = median(runs.iter().map(|run| run.seconds));
    println!(
        "median  {:>4.1}  {:>7.1}  {:>12}         {:>10}         {:>18.2}",
        mb_per_s(len, seconds),
        seconds,
        mb(median(runs.iter().map(|run| run.receiver.memory.peak as f64)) as u64),
        mb(median(runs.iter().map(|run| run.sender.memory.peak as f64)) as u64),
        median(runs.iter().map(|run| run.load)),
    );
    Ok(())
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
    bo.incoming_offer().await?;
    bo.client().execute(TIMER, vec![]).await?;

    let sampler = Sampler::start(&bo, &ana);
    let ended = async {
        bo.accept().await?;
        wait_for_end(&bo, timeout).await
    }
    .await;
    let [receiver, sender] = sampler.stop().await?;
    let (seconds, status) = ended?;
    ensure!(status == "Complete", "the transfer ended as {status:?}");

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
    })
}

/// One bare data-channel transfer of `len` bytes between two fresh browsers.
async fn raw_run(harness: &Harness, args: &Args, len: u64, timeout: Duration) -> Result<Run> {
    let ana = harness.open_user_in("Ana", args.sender).await?;
    let bo = harness.open_user_in("Bo", args.receiver).await?;
    let offer = ana
        .client()
        .execute(&in_async(&format!("{GATHERED_SDP}{RAW_OFFER}")), vec![])
        .await?;
    let answer = bo
        .client()
        .execute(
            &in_async(&format!("{GATHERED_SDP}{RAW_ANSWER}")),
            vec![offer, Value::from(len)],
        )
        .await?;
    let sampler = Sampler::start(&bo, &ana);
    let ended = async {
        ana.client()
            .execute(&in_async(RAW_SEND), vec![answer, Value::from(len)])
            .await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let raw = bo
                .client()
                .execute("const { received, start, end } = window.__ferryRaw; return { received, start, end };", vec![])
                .await?;
            if let (Some(start), Some(end)) = (raw["start"].as_f64(), raw["end"].as_f64()) {
                let received = raw["received"].as_u64().unwrap_or_default();
                ensure!(received == len, "Bo received {received} bytes of the {len} sent");
                return Ok((end - start) / 1000.0);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("the transfer did not end within {timeout:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    .await;
    let [receiver, sender] = sampler.stop().await?;
    Ok(Run {
        seconds: ended?,
        receiver,
        sender,
        load: load_average()?,
    })
}

/// `script`, which awaits, as a script WebDriver runs in any browser: an async function whose
/// promise WebDriver waits for. (chromedriver accepts `await` at the top of a script; Firefox
/// does not.) An arrow function keeps the script's `arguments`.
fn in_async(script: &str) -> String {
    format!("return (async () => {{\n{script}\n}})();")
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

/// Samples two browsers' processes on a thread of its own until stopped.
#[derive(Debug)]
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<[Usage; 2]>>,
}

impl Sampler {
    /// Starts sampling the browsers of `receiver` and `sender`.
    fn start(receiver: &User, sender: &User) -> Self {
        let profiles = [
            (receiver.profile().to_owned(), receiver.kind()),
            (sender.profile().to_owned(), sender.kind()),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let stop = Arc::clone(&stop);
            tokio::task::spawn_blocking(move || sample_browsers(&profiles, &stop))
        };
        Self { stop, task }
    }

    /// Stops sampling and returns what the receiver's and the sender's browsers used.
    async fn stop(self) -> Result<[Usage; 2]> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

/// Reads each browser's processes until `stop` is set, and returns what one browser, named by
/// its profile folder, used meanwhile.
///
/// The page's renderer is the browser's largest; the others (Chromium's own UI, a spare one it
/// keeps for new tabs) are small.
fn sample_browsers(profiles: &[(PathBuf, Kind); 2], stop: &AtomicBool) -> Result<[Usage; 2]> {
    let mut usage: [Usage; 2] = Default::default();
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if tick.is_multiple_of(RESCAN_EVERY) {
            for (usage, (profile, kind)) in usage.iter_mut().zip(profiles) {
                let processes = match kind {
                    Kind::Chromium => chromium_processes(profile)?,
                    Kind::Firefox => firefox_processes(profile)?,
                };
                for (pid, role) in processes {
                    usage.processes.entry(pid).or_insert_with(|| Tracked {
                        role,
                        first: None,
                        last: 0,
                    });
                }
            }
        }
        for usage in &mut usage {
            usage.sample();
        }
        tick += 1;
        std::thread::sleep(SAMPLE_INTERVAL);
    }
    for usage in &mut usage {
        usage.sample();
    }
    for (usage, (profile, _)) in usage.iter().zip(profiles) {
        ensure!(
            usage.memory.peak > 0,
            "found no renderer of the browser with profile {}",
            profile.display()
        );
    }
    Ok(usage)
}

/// What one browser used during a transfer.
#[derive(Debug, Default)]
struct Usage {
    memory: Memory,
    processes: HashMap<u32, Tracked>,
}

/// One process of a browser and its CPU time so far, in clock ticks.
#[derive(Debug)]
struct Tracked {
    role: String,
    first: Option<u64>,
    last: u64,
}

impl Usage {
    /// Reads the memory of the renderers and the CPU time of every process once.
    fn sample(&mut self) {
        let mut largest = None;
        for (&pid, tracked) in &mut self.processes {
            if tracked.role == "renderer" {
                largest = largest.max(resident(pid));
            }
            if let Some(ticks) = cpu_ticks(pid) {
                tracked.first.get_or_insert(ticks);
                tracked.last = ticks;
            }
        }
        if let Some(largest) = largest {
            if self.memory.first == 0 {
                self.memory.first = largest;
            }
            self.memory.peak = self.memory.peak.max(largest);
        }
    }

    /// CPU seconds spent during the transfer by each role of process, busiest first.
    fn cpu_seconds(&self) -> Vec<(String, f64)> {
        let mut by_role: HashMap<&str, u64> = HashMap::new();
        for tracked in self.processes.values() {
            let used = tracked.last - tracked.first.unwrap_or(tracked.last);
            *by_role.entry(&tracked.role).or_default() += used;
        }
        let mut seconds: Vec<(String, f64)> = by_role
            .into_iter()
            .map(|(role, ticks)| (role.to_owned(), ticks as f64 / CLOCK_TICKS_PER_SECOND))
            .collect();
        seconds.sort_by(|a, b| b.1.total_cmp(&a.1));
        seconds
    }
}

/// The processes of the browser started with `--user-data-dir=profile`, with their roles:
/// Chromium passes that flag on to every process it starts, so it tells two browsers apart.
/// A role is the process's `--utility-sub-type` (shortened: "NetworkService"), else its
/// `--type` ("renderer", "gpu-process", "zygote"), else "browser".
///
/// A process that exits during the scan is left out.
fn chromium_processes(profile: &Path) -> Result<Vec<(u32, String)>> {
    let flag = format!("--user-data-dir={}", profile.display());
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        // A renderer rewrites its command line as one string of space-separated arguments,
        // where other processes keep theirs separated by NULs; splitting at both reads either.
        let cmdline = String::from_utf8_lossy(&cmdline);
        let args: Vec<&str> = cmdline.split(['\0', ' ']).collect();
        if !args.contains(&flag.as_str()) {
            continue;
        }
        let value = |name: &str| {
            args.iter()
                .find_map(|arg| arg.strip_prefix(name)?.strip_prefix('='))
        };
        let role = match (value("--utility-sub-type"), value("--type")) {
            (Some(sub_type), _) => sub_type.rsplit('.').next().unwrap_or(sub_type),
            (None, Some(kind)) => kind,
            (None, None) => "browser",
        };
        found.push((pid, role.to_owned()));
    }
    Ok(found)
}

/// The processes of the Firefox started with `-profile profile`: that one, and every process
/// descended from it (content processes may be children of its fork server). A role is a
/// content process's type, its last argument ("tab" is a page's, called "renderer" here as in
/// Chromium; "socket", "rdd", "utility"…), else "browser".
fn firefox_processes(profile: &Path) -> Result<Vec<(u32, String)>> {
    let mut parents = HashMap::new();
    let mut commands = HashMap::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            fs::read_to_string(format!("/proc/{pid}/stat")),
            fs::read(format!("/proc/{pid}/cmdline")),
        ) else {
            continue;
        };
        let Some(parent) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
        else {
            continue;
        };
        parents.insert(pid, parent);
        // Content processes rewrite their command line as one string of space-separated
        // arguments, as Chromium's renderers do; splitting at both reads either.
        let args: Vec<String> = String::from_utf8_lossy(&cmdline)
            .split(['\0', ' '])
            .filter(|arg| !arg.is_empty())
            .map(str::to_owned)
            .collect();
        commands.insert(pid, args);
    }
    let profile = profile.display().to_string();
    let Some(&main) = commands.iter().find_map(|(pid, args)| {
        let named = args
            .windows(2)
            .any(|pair| pair[0] == "-profile" && pair[1] == profile);
        (named && !args.iter().any(|arg| arg == "-contentproc")).then_some(pid)
    }) else {
        return Ok(Vec::new());
    };
    let descends = |mut pid: u32| {
        while let Some(&parent) = parents.get(&pid) {
            if parent == main {
                return true;
            }
            if parent <= 1 {
                return false;
            }
            pid = parent;
        }
        false
    };
    let mut found = vec![(main, "browser".to_owned())];
    for (&pid, args) in &commands {
        if pid != main && descends(pid) {
            let role = match args.last().map(String::as_str) {
                Some("tab") => "renderer",
                Some(kind) if args.iter().any(|arg| arg == "-contentproc") => kind,
                _ => "helper",
            };
            found.push((pid, role.to_owned()));
        }
    }
    Ok(found)
}

/// The user and system CPU time of `pid` in clock ticks, or `None` if it has exited.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces; utime and stime are the 12th and 13th
    // fields after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// The resident set size of `pid` in bytes, or `None` if it has exited.
fn resident(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The one-minute load average, which says how much else competed for the two cores.
fn load_average() -> Result<f64> {
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
