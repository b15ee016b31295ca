//! A page's WebRTC watched from outside the app, as a person's browser tools could: the bytes
//! it sends over data channels, and its peer connections closed at once, as a network failure
//! would end them. The same script serves the app's own browser tests.
//!
//! The script runs in the page's own context, through a `<script>` element: Firefox runs
//! WebDriver's scripts in a sandbox whose changes to the page's globals the page never sees.
//! Answers come back through an attribute of the document, which both contexts share.

use anyhow::{Context, Result};
use serde_json::json;

use crate::User;

/// The script, as the body of a function that installs the watch once and returns it.
const WATCH: &str = include_str!("../../app/tests/watch_webrtc.js");

/// Evaluates `expression` in the context of `user`'s page and returns its value as text.
pub(crate) async fn in_page(user: &User, expression: &str) -> Result<String> {
    let run = "const [expression] = arguments;
        const root = document.documentElement;
        const script = document.createElement('script');
        script.textContent = 'document.documentElement.dataset.ferryAnswer = String(' + expression + ');';
        root.appendChild(script);
        script.remove();
        const answer = root.dataset.ferryAnswer;
        delete root.dataset.ferryAnswer;
        return answer ?? null;";
    let answer = user
        .client()
        .execute(run, vec![json!(expression)])
        .await
        .context("running a script in the page")?;
    answer
        .as_str()
        .map(str::to_owned)
        .context("the page's script did not answer (did it throw?)")
}

/// Installs the watch in `user`'s page; peer connections made from now on are watched.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn watch_webrtc(user: &User) -> Result<()> {
    in_page(
        user,
        &format!("(function () {{ {WATCH} }})() !== undefined"),
    )
    .await?;
    Ok(())
}

/// The bytes `user`'s page handed to data channels since the watch was installed.
///
/// # Errors
/// When the watch is not installed.
pub async fn bytes_sent(user: &User) -> Result<u64> {
    count(user, "globalThis.__ferryWatch.sent()").await
}

/// The longest message `user`'s page handed to a data channel since the watch was
/// installed, in bytes.
///
/// # Errors
/// When the watch is not installed.
pub async fn largest_message(user: &User) -> Result<u64> {
    count(user, "globalThis.__ferryWatch.largest()").await
}

/// Closes every watched peer connection of `user`'s page; returns the bytes sent until then.
///
/// # Errors
/// When the watch is not installed.
pub async fn break_connections(user: &User) -> Result<u64> {
    count(user, "globalThis.__ferryWatch.breakAll()").await
}

/// Holds `user`'s sending still once its page has sent `bytes` more: from then on its data channels say their queues are full, so the transfer
/// waits, as behind a network that takes nothing more, however fast this machine is. A test
/// that must interrupt a transfer midway so knows it cannot have ended first. The hold lasts
/// until [`release_sending`], a [`break_connections`] or the page's end.
///
/// # Errors
/// When the watch is not installed.
pub async fn hold_sending_after(user: &User, bytes: u64) -> Result<()> {
    in_page(user, &format!("globalThis.__ferryWatch.holdAfter({bytes})")).await?;
    Ok(())
}

/// Makes `user`'s page hear none of the other side's receipts (a block stored, a file
/// verified) and no channel closing from now on, so a sender never learns that its bytes
/// arrived.
///
/// # Errors
/// When the watch is not installed.
pub async fn deafen(user: &User) -> Result<()> {
    in_page(user, "globalThis.__ferryWatch.deafen()").await?;
    Ok(())
}

/// Lifts the hold of [`hold_sending_after`], waking every sender that waits for room.
///
/// # Errors
/// When the watch is not installed.
pub async fn release_sending(user: &User) -> Result<()> {
    in_page(user, "globalThis.__ferryWatch.release()").await?;
    Ok(())
}

/// Where the bytes `user`'s page sent since the break went, in words: the connections made
/// since shortly before it with the bytes sent over each, and the bytes of chunks sent twice.
///
/// # Errors
/// When the watch is not installed or no break happened.
pub async fn after_break(user: &User) -> Result<String> {
    in_page(user, "globalThis.__ferryWatch.afterBreak()").await
}

/// How long after the break the app marked the transfer resumed (`ferry:resumed`), if it did.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn resumed_after_break(user: &User) -> Result<Option<std::time::Duration>> {
    let broke = in_page(user, "globalThis.__ferryWatch?.brokeAt ?? NaN").await?;
    let broke = broke.parse::<f64>().ok().filter(|at| at.is_finite());
    let resumed = resumed_at(user).await?;
    Ok(broke
        .zip(resumed)
        .map(|(broke, resumed)| resumed - broke)
        .filter(|millis| *millis >= 0.0)
        .map(|millis| std::time::Duration::from_secs_f64(millis / 1000.0)))
}

/// The page's clock (`performance.now()`), in milliseconds.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn page_clock(user: &User) -> Result<f64> {
    let now = in_page(user, "performance.now()").await?;
    now.parse().context("the page has no clock")
}

/// When the app last marked the transfer resumed (`ferry:resumed`), on the page's clock.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn resumed_at(user: &User) -> Result<Option<f64>> {
    let at = in_page(
        user,
        "performance.getEntriesByName('ferry:resumed').pop()?.startTime ?? NaN",
    )
    .await?;
    Ok(at.parse::<f64>().ok().filter(|at| at.is_finite()))
}

async fn count(user: &User, expression: &str) -> Result<u64> {
    let answer = in_page(user, expression).await?;
    answer
        .parse::<u64>()
        .with_context(|| format!("the WebRTC watch answered {answer:?}"))
}
