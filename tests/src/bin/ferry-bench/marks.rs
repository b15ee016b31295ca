//! Reads the app's `performance.mark`s, which time the moments a person waits on: from
//! pressing Send to the connection being open, and from pressing Accept to the first byte.

use anyhow::{Context, Result};
use ferry_e2e::User;
use serde_json::json;

/// How long the two waits took in one run, in milliseconds on each page's own clock.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// Ana: from pressing Send to the data channel to Bo being open.
    pub send_to_open: f64,
    /// Bo: from pressing Accept to the first chunk arriving.
    pub accept_to_first_byte: f64,
}

impl Waits {
    /// Reads the marks from both pages once the transfer ended.
    pub async fn read(ana: &User, bo: &User) -> Result<Self> {
        Ok(Self {
            send_to_open: between(ana, "ferry:send", "ferry:open").await?,
            accept_to_first_byte: between(bo, "ferry:accept", "ferry:first-byte").await?,
        })
    }
}

/// The milliseconds from the first `from` mark to the first `to` mark in `user`'s page.
pub async fn between(user: &User, from: &str, to: &str) -> Result<f64> {
    const READ: &str = "const [from, to] = arguments; \
        const at = (name) => performance.getEntriesByName(name, 'mark')[0]?.startTime ?? null; \
        return [at(from), at(to)];";
    let times = user
        .client()
        .execute(READ, vec![json!(from), json!(to)])
        .await?;
    let start = times[0]
        .as_f64()
        .with_context(|| format!("the page has no {from:?} mark"))?;
    let end = times[1]
        .as_f64()
        .with_context(|| format!("the page has no {to:?} mark"))?;
    Ok(end - start)
}
