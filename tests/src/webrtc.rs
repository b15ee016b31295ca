//! A page's WebRTC watched from outside the app, as a person's browser tools could: the bytes
//! it sends over data channels, and its peer connections closed at once, as a network failure
//! would end them. The same script serves the app's own browser tests.

use anyhow::{Context, Result};

use crate::User;

/// The script, as the body of a function that installs the watch once and returns it.
const WATCH: &str = include_str!("../../app/tests/watch_webrtc.js");

/// Installs the watch in `user`'s page; peer connections made from now on are watched.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn watch_webrtc(user: &User) -> Result<()> {
    user.client()
        .execute(WATCH, Vec::new())
        .await
        .context("installing the WebRTC watch")?;
    Ok(())
}

/// The bytes `user`'s page handed to data channels since the watch was installed.
///
/// # Errors
/// When the watch is not installed.
pub async fn bytes_sent(user: &User) -> Result<u64> {
    count(user, "return globalThis.__ferryWatch.sent();").await
}

/// Closes every watched peer connection of `user`'s page; returns the bytes sent until then.
///
/// # Errors
/// When the watch is not installed.
pub async fn break_connections(user: &User) -> Result<u64> {
    count(user, "return globalThis.__ferryWatch.breakAll();").await
}

/// How long after the break the app marked the transfer resumed (`ferry:resumed`), if it did.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn resumed_after_break(user: &User) -> Result<Option<std::time::Duration>> {
    let script = "const resumed = performance.getEntriesByName('ferry:resumed').pop();
        const broke = globalThis.__ferryWatch?.brokeAt;
        return resumed && broke != null ? resumed.startTime - broke : null;";
    let value = user.client().execute(script, Vec::new()).await?;
    Ok(value
        .as_f64()
        .filter(|millis| *millis >= 0.0)
        .map(|millis| std::time::Duration::from_secs_f64(millis / 1000.0)))
}

/// The page's clock (`performance.now()`), in milliseconds.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn page_clock(user: &User) -> Result<f64> {
    let value = user
        .client()
        .execute("return performance.now();", Vec::new())
        .await?;
    value.as_f64().context("the page has no clock")
}

/// When the app last marked the transfer resumed (`ferry:resumed`), on the page's clock.
///
/// # Errors
/// When the browser cannot run the script.
pub async fn resumed_at(user: &User) -> Result<Option<f64>> {
    let script = "const resumed = performance.getEntriesByName('ferry:resumed').pop();
        return resumed ? resumed.startTime : null;";
    Ok(user.client().execute(script, Vec::new()).await?.as_f64())
}

async fn count(user: &User, script: &str) -> Result<u64> {
    let value = user
        .client()
        .execute(script, Vec::new())
        .await
        .context("asking the WebRTC watch")?;
    // A byte count is a whole number far below 2^53.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    value
        .as_f64()
        .map(|bytes| bytes as u64)
        .context("the WebRTC watch answered no number")
}
