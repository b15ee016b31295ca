//! The signaling server's own account of a scenario: what it logged (who joined, left, was
//! kept for a reconnect, came back, expired or was cut off, and every refusal), kept in
//! memory and printed beside a failed scenario's pages. What the pages show says what each
//! person saw; this says what the server did, which tells a page that was told a lie from
//! one that misread the truth.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, Once};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The most lines kept: a scenario's server says a few hundred things; a flood cannot grow
/// the test process without bound.
const KEPT: usize = 5_000;

static LINES: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
static INSTALL: Once = Once::new();

/// Starts keeping the server's log lines, once per process; a later call does nothing.
pub(crate) fn keep() {
    INSTALL.call_once(|| {
        let started = Instant::now();
        let capture = Capture { started }
            .with_filter(Targets::new().with_target("ferry_signaling", Level::DEBUG));
        // Another subscriber set first (a program's own) keeps its place; nothing is kept then.
        let _ = tracing_subscriber::registry().with(capture).try_init();
    });
}

/// Takes the lines logged since the last call.
pub(crate) fn take() -> Vec<String> {
    lines().drain(..).collect()
}

fn lines() -> std::sync::MutexGuard<'static, VecDeque<String>> {
    LINES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The layer that formats each event into one line.
struct Capture {
    started: Instant,
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut line = format!(
            "{:>9.3} s {:5} ",
            self.started.elapsed().as_secs_f64(),
            event.metadata().level()
        );
        event.record(&mut Fields(&mut line));
        let mut lines = lines();
        if lines.len() == KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Writes an event's message, then its other fields as `name=value`.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}
