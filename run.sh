#!/usr/bin/env bash
# Runs Ferry: installs what is missing, builds the app in release mode, starts the server and
# prints the URL to open in two tabs. Extra arguments go to the server (try `--help`).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

step "building the app (release)"
trunk build --release
step "building the server (release)"
cargo build --release --locked -p ferry-signaling
step "starting the server; stop it with Ctrl-C"
exec target/release/ferry-signaling --static-dir dist "$@"
