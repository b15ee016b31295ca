//! Headless-browser tests of the web glue through the code the app runs: two engines in one
//! page, their signaling wired straight to each other, move real files over real
//! `RTCPeerConnection`s; the private file system and the writer worker write and read back.
//! One module per subject; [`support`] and [`hand`] hold what they share.
//!
//! Run with `wasm-bindgen-test-runner` (see `webdriver.json` for the browser flags that let
//! Chromium and Firefox gather ICE candidates on loopback only).

#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_browser);

mod folders;
mod hand;
mod protocol;
mod resume;
mod storage;
mod support;
mod transfers;
