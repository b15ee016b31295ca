#!/usr/bin/env bash
# Installs what building and testing Ferry needs, skipping whatever is already present.
#
# Sourced by run.sh and test.sh. Idempotent: a second run only checks versions. Everything
# comes from package registries (Debian, crates.io, npm); nothing downloads a prebuilt binary.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$repo_root/.tools/node_modules/.bin:$PATH"
# trunk asks the network for a newer version of itself on every run; this machine has none.
export TRUNK_SKIP_VERSION_CHECK=true

trunk_version="0.21.14"
# The newest geckodriver that builds with this toolchain; it drives Debian's Firefox ESR.
geckodriver_version="0.37.1"
binaryen_version="132"
# The CLI must match the wasm-bindgen library version the lockfile pins, or trunk tries to
# download one.
wasm_bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$repo_root/Cargo.lock")"

step() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  step "installing Debian's chromium and chromium-driver"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi

if [ ! -x /usr/bin/firefox-esr ]; then
  step "installing Debian's firefox-esr"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y firefox-esr
fi

if [ "$(geckodriver --version 2>/dev/null | head -n 1)" != "geckodriver $geckodriver_version" ]; then
  step "installing geckodriver $geckodriver_version (about 4 minutes)"
  cargo install geckodriver --version "$geckodriver_version" --locked
fi

if [ ! -x /usr/bin/turnserver ]; then
  step "installing Debian's coturn, the TURN relay of the end-to-end tests"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y coturn
fi

if [ ! -x /usr/bin/redis-server ]; then
  step "installing Debian's redis-server, the shared store of the several-instance tests"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi

if ! command -v brotli >/dev/null; then
  step "installing Debian's brotli, which compresses the built app once, at build time"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y brotli
fi

if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
  step "installing util-linux and iproute2 for the loopback-only test namespace"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y util-linux iproute2
fi

if [ "$(trunk --version 2>/dev/null)" != "trunk $trunk_version" ]; then
  step "installing trunk $trunk_version (about 5 minutes)"
  # trunk 0.22 needs a newer rustc than this toolchain, so the version is pinned.
  cargo install trunk --version "$trunk_version" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen_version" ]; then
  step "installing wasm-bindgen-cli $wasm_bindgen_version (about 2 minutes)"
  # Not --locked: the CLI's own lockfile pins a dependency version the registry no longer has.
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "$binaryen_version" ]; then
  step "installing binaryen@$binaryen_version from npm for wasm-opt"
  # Debian's binaryen (wasm-opt 108) emits a wasm that crashes at start-up; npm's works.
  mkdir -p "$repo_root/.tools"
  npm install --prefix "$repo_root/.tools" --no-audit --no-fund "binaryen@$binaryen_version"
fi

# trunk builds with `cargo --offline` (Trunk.toml sets offline), so the crates must be here.
(cd "$repo_root" && cargo fetch --locked)
