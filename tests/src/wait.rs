//! Waiting for the state a test expects by polling it, with a generous deadline instead of
//! fixed sleeps: a wait ends as soon as the state is there, and fails loudly when it never is.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use fantoccini::error::CmdError;

/// How long a test waits for anything a person would expect to happen "soon". Generous, because
/// two browsers on two cores can be slow, and a wait ends as soon as its condition holds.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often a condition is checked again. Each check is a few WebDriver round trips, so this
/// only keeps an idle wait from spinning.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `probe` until it returns `Some`, for at most `deadline`.
///
/// An error from `probe` ends the wait, except one that only says the DOM changed under the probe
/// (an element went stale or vanished between two WebDriver calls): that counts as "not yet",
/// and the last one is reported if the deadline passes.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) if is_dom_churn(&error) => last_error = Some(error),
            Err(error) => return Err(error.context(format!("while waiting for {what}"))),
        }
        if start.elapsed() >= deadline {
            let timeout = format!("timed out after {deadline:?} waiting for {what}");
            return Err(match last_error {
                Some(error) => error.context(timeout),
                None => anyhow!(timeout),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether `error` is WebDriver's report that an element changed while it was being looked at,
/// which happens whenever the app re-renders between two calls.
fn is_dom_churn(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<CmdError>()
            .is_some_and(|error| error.is_stale_element_reference() || error.is_no_such_element())
    })
}
