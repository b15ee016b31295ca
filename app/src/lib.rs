//! Ferry in the browser: join with a nickname, see who is online, and send files straight to
//! another browser over `RTCDataChannel`s, with accept/decline, progress and a verified save.
//!
//! The tree reads from the outside in:
//! - [`ui`]: the Leptos views, which read plain state and call the session;
//! - [`session`]: owns the signaling client and the transfer engine, and turns what they
//!   report into that plain state;
//! - [`web`]: all browser glue, the engine's tasks among it (sending, receiving, the links,
//!   storage), one job per file;
//! - [`core`]: the native core the glue drives — the transfer state machine, block
//!   verification, the striping scheduler, flow control, rows — plain Rust with native tests,
//!   in the `ferry-core` crate, which a native peer shares.
//!
//! Everything but [`core`] exists only on `wasm32`.

#![forbid(unsafe_code)]

pub use ferry_core as core;

#[cfg(target_arch = "wasm32")]
pub mod session;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod web;
