#!/usr/bin/env bash
# trunk's post-build hook: writes a gzip and a brotli copy beside every file of the built app
# that compresses, once per build, so the server sends them compressed without compressing
# anything per request.
set -euo pipefail
dir="${TRUNK_STAGING_DIR:?run as the post_build hook of trunk, which sets it}"
find "$dir" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.webmanifest' \) -print0 |
  while IFS= read -r -d '' file; do
    gzip -9 --keep --force --no-name "$file"
    brotli -q 11 --keep --force "$file"
  done
