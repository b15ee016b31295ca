//! How soon Ferry's page shows and works on a slow phone connection: Chromium's own network
//! throttling (`--page-load`, 1.6 Mbit/s and 150 ms by default, Lighthouse's "slow 4G") between
//! one fresh browser and the server, a first visit and then a repeat visit with what the first
//! left (the HTTP cache and the service worker). It prints, for each, the time from navigation
//! to the first text on screen (`first-contentful-paint`), to an interactive page (the app
//! mounted, its `ferry:mounted` mark), and the bytes that crossed the network.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use ferry_e2e::{Harness, User, default_static_dir};
use serde_json::{Value, json};

use crate::{Args, setup};

/// What the page says of its own loading, once the app has mounted; `null` until then.
const TIMINGS: &str = r#"
const mounted = performance.getEntriesByName("ferry:mounted")[0];
const painted = performance.getEntriesByName("first-contentful-paint")[0];
if (!mounted || !painted) return null;
const navigation = performance.getEntriesByType("navigation")[0];
const resources = performance.getEntriesByType("resource");
const bytes = resources.reduce((sum, entry) => sum + entry.transferSize, navigation.transferSize);
return {
  paint: painted.startTime,
  mounted: mounted.startTime,
  bytes,
  requests: resources.length + 1,
  fromNetwork: resources.filter((entry) => entry.transferSize > 0).map((entry) => new URL(entry.name).pathname),
};
"#;

/// How long a throttled visit may take before the benchmark gives up.
const VISIT_DEADLINE: Duration = Duration::from_secs(120);

/// Measures `args.runs` first and repeat visits, each pair in a fresh browser.
pub async fn bench(args: &Args) -> Result<()> {
    let dist = args.dist.clone().unwrap_or_else(default_static_dir);
    let (kbit, latency) = (args.throttle_kbit, args.throttle_latency_ms);
    println!(
        "Ferry's page over {kbit} kbit/s with {latency} ms latency (Chromium's throttling), \
         served from {}",
        dist.display()
    );
    println!("run  visit   first text ms  interactive ms  bytes     requests  from the network");
    for index in 1..=args.runs {
        let harness = Harness::serving(dist.clone(), setup(args, None)).await?;
        let result = visits(&harness, index, kbit, latency).await;
        harness.finish(result.is_err()).await;
        result.with_context(|| format!("run {index}"))?;
    }
    Ok(())
}

async fn visits(harness: &Harness, index: usize, kbit: u64, latency: u64) -> Result<()> {
    let user = harness.open_impatient_user("Phone", "about:blank").await?;
    let bytes_per_second = kbit * 1000 / 8;
    user.devtools("Network.enable", json!({})).await?;
    user.devtools(
        "Network.emulateNetworkConditions",
        json!({
            "offline": false,
            "latency": latency,
            "downloadThroughput": bytes_per_second,
            "uploadThroughput": bytes_per_second,
        }),
    )
    .await?;
    let url = harness.server().url();
    let first = visit(&user, &url).await?;
    print_visit(index, "first", &first);
    user.wait_kept_for_offline().await?;
    let repeat = visit(&user, &url).await?;
    print_visit(index, "repeat", &repeat);
    Ok(())
}

/// Opens `url` and waits for the app to mount; returns what the page measured.
async fn visit(user: &User, url: &str) -> Result<Value> {
    user.client().goto(url).await?;
    let start = std::time::Instant::now();
    loop {
        let timings = user.client().execute(TIMINGS, Vec::new()).await;
        if let Ok(timings) = timings
            && !timings.is_null()
        {
            return Ok(timings);
        }
        ensure!(
            start.elapsed() < VISIT_DEADLINE,
            "the page did not mount within {VISIT_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_visit(index: usize, visit: &str, timings: &Value) {
    let number = |key: &str| timings[key].as_f64().unwrap_or(f64::NAN);
    let from_network: Vec<&str> = timings["fromNetwork"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "{index:>3}  {visit:<6}  {:>13.0}  {:>14.0}  {:>8}  {:>8}  {}",
        number("paint"),
        number("mounted"),
        number("bytes"),
        number("requests"),
        from_network.join(" ")
    );
}
