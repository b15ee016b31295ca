//! The ceiling: bare `RTCDataChannel`s between the same two browsers, over one peer
//! connection or several, sending bytes as fast as they take them and discarding them.
//!
//! The pages trade complete session descriptions by WebDriver, with no server in between;
//! over an emulated wide-area link the harness rewrites their candidates as the server does
//! for Ferry, so both cross the same link.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use ferry_e2e::Harness;
use serde_json::Value;

use super::sampler::Sampler;
use super::{Args, POLL_INTERVAL, Run, load_average};

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

/// Run in Ana's page: opens `count` peer connections with a bare channel each, and returns
/// their offers, once every ICE candidate is in them.
const OFFERS: &str = r#"
const [count] = arguments;
const raw = { pcs: [], channels: [] };
window.__ferryRaw = raw;
const offers = [];
for (let i = 0; i < count; i++) {
  const pc = new RTCPeerConnection();
  raw.pcs.push(pc);
  raw.channels.push(pc.createDataChannel('raw', { ordered: true }));
  await pc.setLocalDescription(await pc.createOffer());
  offers.push(await gatheredSdp(pc));
}
return offers;
"#;

/// Run in Bo's page: answers every offer and counts what arrives on any channel, discarding
/// it, on the page's own clock from the first message to the last.
const ANSWERS: &str = r#"
const [offers, total] = arguments;
const raw = { pcs: [], received: 0, start: null, end: null };
window.__ferryRaw = raw;
const answers = [];
for (const offer of offers) {
  const pc = new RTCPeerConnection();
  raw.pcs.push(pc);
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
  answers.push(await gatheredSdp(pc));
}
return answers;
"#;

/// Run in Ana's page: takes the answers and, once every channel is open, sends `total` bytes
/// spread over them in 256 KiB messages (Ferry's chunk size), each channel waiting above 8 MiB
/// queued until half of it is gone. Ferry waits above 2 MiB; measured with 8 MiB it moved as
/// fast, so the two differ only in what Ferry adds.
const SEND: &str = r#"
const [answers, total] = arguments;
const { pcs, channels } = window.__ferryRaw;
for (let i = 0; i < pcs.length; i++) {
  await pcs[i].setRemoteDescription({ type: 'answer', sdp: answers[i] });
}
for (const channel of channels) {
  if (channel.readyState !== 'open') {
    await new Promise((done) => channel.addEventListener('open', done, { once: true }));
  }
}
const chunk = new Uint8Array(256 * 1024);
for (let at = 0; at < chunk.length; at += 65536) {
  crypto.getRandomValues(chunk.subarray(at, at + 65536));
}
const high = 8 * 1024 * 1024;
let sent = 0;
for (const channel of channels) {
  channel.bufferedAmountLowThreshold = high / 2;
  (async () => {
    while (sent < total) {
      if (channel.bufferedAmount > high) {
        await new Promise((done) =>
          channel.addEventListener('bufferedamountlow', done, { once: true }));
        continue;
      }
      const length = Math.min(chunk.length, total - sent);
      sent += length;
      channel.send(length === chunk.length ? chunk : chunk.subarray(0, length));
    }
  })();
}
"#;

/// One bare transfer of `len` bytes over `connections` peer connections between two fresh
/// browsers.
pub async fn run(
    harness: &Harness,
    args: &Args,
    connections: usize,
    len: u64,
    timeout: Duration,
) -> Result<Run> {
    let ana = harness.open_user_in("Ana", args.sender).await?;
    let bo = harness.open_user_in("Bo", args.receiver).await?;
    let offers = ana
        .client()
        .execute(
            &in_async(&format!("{GATHERED_SDP}{OFFERS}")),
            vec![Value::from(connections)],
        )
        .await?;
    let offers = across_the_link(harness, offers);
    let answers = bo
        .client()
        .execute(
            &in_async(&format!("{GATHERED_SDP}{ANSWERS}")),
            vec![offers, Value::from(len)],
        )
        .await?;
    let answers = across_the_link(harness, answers);
    let sampler = Sampler::start(&bo, &ana);
    let ended = async {
        ana.client()
            .execute(&in_async(SEND), vec![answers, Value::from(len)])
            .await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let raw = bo
                .client()
                .execute(
                    "const { received, start, end } = window.__ferryRaw; \
                     return { received, start, end };",
                    vec![],
                )
                .await?;
            if let (Some(start), Some(end)) = (raw["start"].as_f64(), raw["end"].as_f64()) {
                let received = raw["received"].as_u64().unwrap_or_default();
                ensure!(
                    received == len,
                    "Bo received {received} bytes of the {len} sent"
                );
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
    Ok(Run::plain(ended?, receiver, sender, load_average()?))
}

/// Session descriptions as the other browser must see them when an emulated link lies
/// between the two: their candidates pointed at the link.
fn across_the_link(harness: &Harness, descriptions: Value) -> Value {
    let Some(wan) = harness.server().wan() else {
        return descriptions;
    };
    match descriptions {
        Value::Array(list) => list
            .into_iter()
            .map(|sdp| match sdp {
                Value::String(sdp) => Value::String(wan.rewrite_sdp(&sdp)),
                other => other,
            })
            .collect(),
        other => other,
    }
}

/// `script`, which awaits, as a script WebDriver runs in any browser: an async function whose
/// promise WebDriver waits for. (chromedriver accepts `await` at the top of a script; Firefox
/// does not.) An arrow function keeps the script's `arguments`.
fn in_async(script: &str) -> String {
    format!("return (async () => {{\n{script}\n}})();")
}
