#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a used one: installs what is missing, then runs
# formatting, lints, the wasm32 build of the protocol crate, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

step "system packages"
# coturn's turnutils_stunclient is the real STUN client the STUN tests use.
if ! command -v turnutils_stunclient >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq coturn >/dev/null
fi

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "protocol crate builds for wasm32 (no I/O)"
cargo build --locked -p switchboard-protocol --target wasm32-unknown-unknown

step "tests"
cargo test --workspace --locked
