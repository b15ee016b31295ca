//! What a person (or a script) sees: a progress bar per transfer on stderr, hidden when stderr
//! is not a terminal, and a line per event; with `--json`, one JSON object per line on stdout.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

/// Where events and progress go.
#[derive(Debug, Clone)]
pub struct Report {
    json: bool,
    bars: MultiProgress,
}

/// One transfer's progress.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    report: Report,
    id: String,
    total: u64,
    last_json: std::time::Instant,
}

impl Report {
    /// Events as JSON lines (`json`), or as words and bars.
    pub fn new(json: bool) -> Self {
        let target = if json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Self {
            json,
            bars: MultiProgress::with_draw_target(target),
        }
    }

    /// Says something happened: `words` for people, `event` with `fields` for scripts.
    pub fn say(&self, event: &str, fields: Value, words: &str) {
        if self.json {
            // When, in milliseconds since 1970, so a script can time what two ends saw.
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis());
            let mut line = json!({ "event": event, "at": at });
            if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
                line.extend(fields);
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        } else {
            // Printed above the bars, so they are not torn.
            let _ = self.bars.println(words);
            if self.bars.is_hidden() {
                eprintln!("{words}");
            }
        }
    }

    /// A bar for transfer `id` of `total` bytes.
    pub fn progress(&self, id: &str, total: u64, label: &str) -> Progress {
        let bar = (!self.json).then(|| {
            let bar = self.bars.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} \
                     {binary_bytes_per_sec} {eta} left",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            report: self.clone(),
            id: id.to_owned(),
            total,
            last_json: std::time::Instant::now(),
        }
    }
}

impl Progress {
    /// `done` of the bytes are through (checked and written, or said so by the receiver).
    pub fn set(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if self.last_json.elapsed() >= Duration::from_millis(500) || done == self.total {
            self.last_json = std::time::Instant::now();
            self.report.say(
                "progress",
                json!({ "id": self.id, "done": done, "total": self.total }),
                "",
            );
        }
    }

    /// The transfer is over: the bar goes.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
