#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a used one: installs what is missing, then runs
# formatting, lints (native and wasm32), the check that the committed wasm demo and browser
# bundle are current, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Incremental caches only help rebuilds after edits; a test run does not need them, and they
# double the size of the workspace's own artifacts.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Each stage's time is printed when the next one starts, and the total at the end.
suite_start=$(date +%s)
stage_start=$suite_start
stage_name=""
step() {
  local now
  now=$(date +%s)
  if [ -n "$stage_name" ]; then
    printf '== %s: %ss\n' "$stage_name" "$((now - stage_start))"
  fi
  stage_name="$*"
  stage_start=$now
  printf '\n== %s (disk: %s free, target: %s)\n' "$*" \
    "$(df -h --output=avail . | tail -1 | tr -d ' ')" \
    "$(du -sh target 2>/dev/null | cut -f1 || echo 0)"
}
finish() {
  step "done"
  printf '== total: %ss\n' "$(($(date +%s) - suite_start))"
}

step "toolchain"
if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

step "system packages"
# coturn's turnutils_stunclient is the real STUN client the STUN tests use; Debian's chromium and
# firefox-esr are the browsers of the end-to-end tests; Node runs the browser client's build and
# tests; Python (with pip) runs the push tests' push service; redis-server is the cluster tests'
# shared store (each test starts its own on a free loopback port, without persistence).
missing=()
command -v turnutils_stunclient >/dev/null || missing+=(coturn)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || missing+=(chromium)
[ -x "${FIREFOX_BIN:-/usr/bin/firefox-esr}" ] || missing+=(firefox-esr)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Web Push tests' local push service decrypts and verifies with independent Python code.
if ! python3 -c "import http_ece, cryptography" 2>/dev/null; then
  echo "installing: Python packages of crates/server/tests/data/requirements.txt"
  python3 -m pip install --quiet -r crates/server/tests/data/requirements.txt ||
    python3 -m pip install --quiet --break-system-packages -r crates/server/tests/data/requirements.txt
fi

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked --features switchboard-client/ggrs -- -D warnings

step "wasm32: lints of the Rust client in the browser; the committed wasm demo is current"
cargo clippy --locked -p switchboard-protocol -p switchboard-client -p switchboard-wasm-chat \
  --target wasm32-unknown-unknown -- -D warnings
# The demo served at /demo/rust-chat is committed (a fresh clone serves it without a wasm
# toolchain): it must be what the sources build, byte for byte.
wasm_out=$(mktemp -d)
./scripts/build-wasm-demo.sh "$wasm_out" >/dev/null
for file in switchboard_wasm_chat.js switchboard_wasm_chat_bg.wasm; do
  if ! cmp -s "$wasm_out/$file" "crates/server/assets/demo/wasm/$file"; then
    echo "crates/server/assets/demo/wasm/$file is out of date: run scripts/build-wasm-demo.sh and commit it" >&2
    exit 1
  fi
done
rm -rf "$wasm_out"

step "browser client: install, type-check, build"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
# The served bundle is committed (a fresh clone serves it without npm): it must be what the
# sources build.
if git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet -- clients/js/dist/switchboard.js; then
  echo "clients/js/dist/switchboard.js is out of date: run 'npm run build' in clients/js and commit it" >&2
  exit 1
fi

step "browser client: unit tests (node --test)"
(cd clients/js && npm test --silent)

step "Rust tests"
# The Rust client's `ggrs` feature is on, so its GGRS test runs in the same build.
cargo test --workspace --locked --features switchboard-client/ggrs

step "end-to-end tests in headless Chromium and Firefox ESR"
# One build of every binary and example with the workspace's features, as the tests built them:
# per-package builds would resolve other features and rebuild dependencies beside the first copy.
cargo build --locked --workspace --bins --examples --features switchboard-client/ggrs
(cd clients/js && npm run --silent test:e2e)

finish
