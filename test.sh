#!/usr/bin/env bash
# Runs every Ferry test: formatting and lints, native unit and integration tests, wasm tests in
# headless Chromium, and end-to-end tests with two real browsers. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

# Runs a command in a network namespace that has nothing but loopback, so nothing the browsers
# do can leave the machine. Besides 127.0.0.1, its loopback device carries 10.77.0.1: an
# address that is not loopback, as a LAN address is, for the HTTPS and TURN relay scenarios.
in_loopback_namespace() {
  local unshare_flags=(-n)
  [ "$(id -u)" -eq 0 ] || unshare_flags=(-r -n)
  unshare "${unshare_flags[@]}" -- bash -c \
    'ip link set lo up && ip addr add 10.77.0.1/32 dev lo && exec "$@"' in_loopback_namespace "$@"
}

step "formatting"
cargo fmt --all --check
step "lints (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "lints (wasm32)"
cargo clippy -p ferry-protocol -p ferry-core -p ferry-app --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

step "native tests"
cargo test --workspace --exclude ferry-e2e --locked

step "building the app (release) for the end-to-end tests"
trunk build --release

step "building the browser tests"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test -p ferry-app --target wasm32-unknown-unknown --locked --no-run
cargo test -p ferry-e2e --locked --no-run
# The end-to-end scenarios run `ferry`, the command-line peer, from beside their own binary.
cargo build -p ferry-cli --locked

# Inside the namespace there is no registry to reach, so cargo must not try.
export CARGO_NET_OFFLINE=true
# wasm-bindgen-test-runner gives the whole run of a browser's tests 20 s by default; the
# debug-build transfers (resumes included) take about that long in Firefox.
export WASM_BINDGEN_TEST_TIMEOUT=180
# wasm-bindgen-test-runner drives the browser whose driver variable is set; app/webdriver.json
# holds both browsers' settings.
step "wasm tests in headless Chromium (loopback-only namespace)"
in_loopback_namespace env CHROMEDRIVER=/usr/bin/chromedriver \
  bash -c 'cd app && cargo test -p ferry-app --target wasm32-unknown-unknown --locked'
step "wasm tests in headless Firefox (loopback-only namespace)"
in_loopback_namespace env GECKODRIVER="$(command -v geckodriver)" \
  bash -c 'cd app && cargo test -p ferry-app --target wasm32-unknown-unknown --locked'
step "end-to-end tests with real browsers (loopback-only namespace)"
in_loopback_namespace cargo test -p ferry-e2e --locked -- --test-threads=1
