//! Headless-browser tests of who is on the other end: the device key, verification and texts
//! between two engines. They run in a page of their own: they keep a device key in IndexedDB
//! and give connections a certificate, and the transfer tests' page stays as it was without
//! them (its Firefox glare test failed in 2 of 3 clean-clone runs with these tests before it).

#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_browser);

// The transfer tests' helpers; this page uses only some of them.
#[allow(dead_code)]
#[path = "../browser/hand.rs"]
mod hand;
#[allow(dead_code)]
#[path = "../browser/support.rs"]
mod support;
mod tests;
