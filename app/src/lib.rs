//! Ferry in the browser: join with a nickname, see who is online, and send files straight to
//! another browser over an `RTCDataChannel`, with accept/decline, progress and a verified save.
//!
//! The pure logic (statuses, chunking, hashing, flow control, rates, names, backoff) is plain
//! Rust that builds and tests natively; everything that touches the browser lives in [`web`]
//! and the Leptos views in [`ui`], both only on `wasm32`.

#![forbid(unsafe_code)]

pub mod backoff;
pub mod chunking;
pub mod filename;
pub mod flow;
pub mod format;
pub mod rate;
pub mod route;
pub mod transfer;

#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod web;
