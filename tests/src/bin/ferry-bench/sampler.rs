//! What the browsers used during a transfer: each side's largest renderer's memory and every
//! process's CPU time, read from /proc on a thread of its own while the transfer runs.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};
use ferry_e2e::{Kind, User};

/// Peak and first-seen private memory of one browser's largest renderer, in bytes: its
/// resident anonymous and shared-memory pages. Not the whole resident set, which also counts
/// the pages of the browser's own program file the renderer has touched (some 70 MB more
/// once WebRTC code runs, whatever the page does).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// When sampling began.
    pub first: u64,
    /// The most.
    pub peak: u64,
    /// The most in each quarter of the sampling time: alike when the transfer holds no more
    /// memory as it goes on, rising when it does.
    pub quarters: [u64; 4],
}

/// The largest of each quarter of `samples`, taken at even intervals.
fn quarter_peaks(samples: &[u64]) -> [u64; 4] {
    let mut peaks = [0; 4];
    for (index, &sample) in samples.iter().enumerate() {
        let quarter = index * 4 / samples.len();
        peaks[quarter] = peaks[quarter].max(sample);
    }
    peaks
}

/// The unit of CPU times in /proc: `sysconf(_SC_CLK_TCK)`, 100 on every Linux Chromium runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// How often /proc is searched again for browser processes that started since; they come and go
/// rarely, and a full scan costs more than reading a few known processes.
const RESCAN_EVERY: u32 = 10;

/// How often the renderers' memory is read during a transfer.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Samples two browsers' processes on a thread of its own until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<[Usage; 2]>>,
}

impl Sampler {
    /// Starts sampling the browsers of `receiver` and `sender`.
    pub fn start(receiver: &User, sender: &User) -> Self {
        Self::watching([Watched::of(receiver), Watched::of(sender)])
    }

    /// Starts sampling the receiver's side and the sender's, browsers or `ferry` processes.
    pub fn watching(sides: [Watched; 2]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let stop = Arc::clone(&stop);
            tokio::task::spawn_blocking(move || sample_browsers(&sides, &stop))
        };
        Self { stop, task }
    }

    /// Stops sampling; returns what the receiver's browser used, then the sender's.
    pub async fn stop(self) -> Result<[Usage; 2]> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

/// One side of a transfer: a browser, named by its profile folder, or the `ferry` process.
#[derive(Clone, Debug)]
pub enum Watched {
    /// A browser of this kind started with this profile.
    Browser(PathBuf, Kind),
    /// `ferry`, the command-line peer, with this process id.
    Terminal(u32),
}

impl Watched {
    /// The browser of `user`.
    pub fn of(user: &User) -> Self {
        Self::Browser(user.profile().to_owned(), user.kind())
    }
}

/// The role `ferry`'s one process has: its memory counts as a renderer's does.
const TERMINAL: &str = "ferry";

/// Reads each side's processes until `stop` is set, and returns what each used meanwhile.
///
/// The page's renderer is the browser's largest; the others (Chromium's own UI, a spare one it
/// keeps for new tabs) are small.
fn sample_browsers(profiles: &[Watched; 2], stop: &AtomicBool) -> Result<[Usage; 2]> {
    let mut usage: [Usage; 2] = Default::default();
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if tick.is_multiple_of(RESCAN_EVERY) {
            for (usage, side) in usage.iter_mut().zip(profiles) {
                let processes = match side {
                    Watched::Browser(profile, Kind::Chromium) => chromium_processes(profile)?,
                    Watched::Browser(profile, Kind::Firefox) => firefox_processes(profile)?,
                    Watched::Terminal(pid) => vec![(*pid, TERMINAL.to_owned())],
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
        usage.memory.quarters = quarter_peaks(&usage.samples);
    }
    for (usage, side) in usage.iter().zip(profiles) {
        ensure!(usage.memory.peak > 0, "found no renderer of {side:?}");
    }
    Ok(usage)
}

/// What one browser used during a transfer.
#[derive(Debug, Default)]
pub struct Usage {
    /// The largest renderer's memory.
    pub memory: Memory,
    /// The largest renderer's memory at each sample.
    samples: Vec<u64>,
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
            if tracked.role == "renderer" || tracked.role == TERMINAL {
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
            self.samples.push(largest);
        }
    }

    /// CPU seconds spent during the transfer by each role of process, busiest first.
    pub fn cpu_seconds(&self) -> Vec<(String, f64)> {
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

/// The private memory of `pid` in bytes (`RssAnon` plus `RssShmem`), or `None` if it has
/// exited.
fn resident(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("RssAnon:")? + kib("RssShmem:")?) * 1024)
}

#[cfg(test)]
mod tests {
    use super::quarter_peaks;

    #[test]
    fn each_quarter_of_the_samples_keeps_its_own_peak() {
        assert_eq!(quarter_peaks(&[1, 5, 2, 2, 9, 3, 4, 4]), [5, 2, 9, 4]);
        assert_eq!(
            quarter_peaks(&[7, 8]),
            [7, 0, 8, 0],
            "fewer samples than quarters"
        );
        assert_eq!(quarter_peaks(&[]), [0; 4]);
    }
}
