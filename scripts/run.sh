#!/usr/bin/env bash
# Runs the Chorus server (release build). Arguments go to the server, e.g.
#   scripts/run.sh --help
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Only what building the server needs (no browser, no Node).
scripts/setup.sh --server

exec cargo run --release -p chorus-server --bin chorus -- "$@"
