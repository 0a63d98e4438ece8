#!/usr/bin/env bash
# The test command: installs what is missing, then format check, clippy, unit and
# integration tests, the browser and interop tests, and the control API fuzzing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
scripts/setup.sh

# Let cargo use every core.
unset CARGO_BUILD_JOBS

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "browser end-to-end test"
scripts/browser-test.sh

step "browser screen share and last-N test"
scripts/browser-test.sh screen

step "browser hold test"
scripts/browser-test.sh hold

step "browser device choice test"
scripts/browser-test.sh devices

step "browser ICE pair-switch test"
scripts/browser-test.sh pair-switch

step "browser H.264 and VP8 test"
scripts/browser-test.sh codecs

step "browser TURN relay test (coturn)"
scripts/browser-test.sh turn-relay

step "browser test over the built-in HTTPS and WSS"
scripts/browser-test.sh https

step "browser lobby test (admit and reject on the demo page)"
scripts/browser-test.sh lobby

step "browser simulcast test (three layers, tile sizes, dynacast)"
scripts/browser-test.sh simulcast

step "browser VP9 SVC test (L3T3_KEY, tile sizes pick the spatial layer)"
scripts/browser-test.sh svc

step "browser AV1 SVC test (L3T3_KEY, descriptor read, base layer decoded at every tile size)"
scripts/browser-test.sh av1

step "GStreamer webrtcbin interop test"
tests/webrtcbin/run.sh

step "control API fuzzing (schemathesis against /v1/openapi.json)"
scripts/api-fuzz.sh

step "all tests passed"
