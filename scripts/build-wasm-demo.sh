#!/usr/bin/env bash
# Builds the Rust client's wasm demo (examples/wasm-chat) into the files the server embeds and
# serves under /demo/wasm/: run it after changing crates/client or examples/wasm-chat, and
# commit the result. With a directory argument it builds there instead (the test script
# compares such a build with the committed files).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-crates/server/assets/demo/wasm}"
# The wasm-bindgen CLI must be the version of the wasm-bindgen crate (pinned in the client).
version=0.2.130
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version"
  # --force: replaces another version (or a record of one whose binary is gone).
  cargo install --quiet --force wasm-bindgen-cli --version "$version"
fi
rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
# Paths that differ between machines do not reach the binary (panic locations), so a build
# anywhere gives the same bytes.
export RUSTFLAGS="--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=$PWD=/switchboard"
cargo build --locked --quiet -p switchboard-wasm-chat --target wasm32-unknown-unknown --profile wasm-demo
mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" \
  target/wasm32-unknown-unknown/wasm-demo/switchboard_wasm_chat.wasm
ls -l "$out"
