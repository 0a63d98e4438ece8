#!/usr/bin/env bash
# Control API fuzzing: schemathesis (installed by scripts/setup.sh) generates requests from
# the live server's /v1/openapi.json, sends them with the API key, and checks every answer:
# no server error (5xx), and status code, content type, headers and body as the document
# says. The server runs inside a private network namespace with only loopback; 80
# participants (tests/api-fuzz/participants.py, signaling only) sit in four rooms so that the
# participant routes meet real participants (tests/api-fuzz/schemathesis.toml).
#
#   scripts/api-fuzz.sh
#
#   CHORUS_BIN=path          use this server binary instead of building target/debug/chorus
#   API_FUZZ_EXAMPLES=N      test cases per operation and phase (default 100: half a minute to two
#                            on 2 cores)
#   API_FUZZ_SEED=N          schemathesis's random seed, to replay a run (default: a new one)
#   SCHEMATHESIS=path        the schemathesis command (default: the venv setup.sh makes)
#
# Needs root (or unprivileged user namespaces) for `unshare -n`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TAG="[api-fuzz]"
PORT=7880
MEDIA_PORT=7882
SCHEMATHESIS="${SCHEMATHESIS:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus/schemathesis-venv/bin/schemathesis}"

if [ "${CHORUS_IN_NETNS:-0}" != 1 ]; then
  if [ ! -x "$SCHEMATHESIS" ]; then
    echo "$TAG no schemathesis at $SCHEMATHESIS: run scripts/setup.sh" >&2
    exit 1
  fi
  if ! /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
    echo "$TAG python3-websockets missing: run scripts/setup.sh" >&2
    exit 1
  fi
  if [ -z "${CHORUS_BIN:-}" ]; then
    echo "$TAG building chorus-server (debug)" >&2
    cargo build -p chorus-server
    CHORUS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/chorus"
  fi
  if [ ! -x "$CHORUS_BIN" ]; then
    echo "$TAG no server binary at $CHORUS_BIN" >&2
    exit 1
  fi
  unshare_cmd=(unshare -n)
  if [ "$(id -u)" -ne 0 ]; then unshare_cmd=(unshare -r -n); fi
  exec "${unshare_cmd[@]}" env CHORUS_IN_NETNS=1 CHORUS_BIN="$CHORUS_BIN" \
    SCHEMATHESIS="$SCHEMATHESIS" bash "$ROOT/scripts/api-fuzz.sh" "$@"
fi

# ---- inside the namespace
ip link set lo up

# shellcheck source=lib/server.sh
source "$ROOT/scripts/lib/server.sh"
WORK="$(mktemp -d)"
LOG="$WORK/server.log"
PARTICIPANTS_PID=
cleanup() {
  if [ -n "$PARTICIPANTS_PID" ]; then kill "$PARTICIPANTS_PID" 2>/dev/null || true; fi
  server_stop
  rm -rf "$WORK"
}

# The embedded development configuration (dev key and secret, loopback), with room limits
# left as they are: schemathesis must see the server as an operator runs it.
env -i PATH="$PATH" CHORUS_HTTP_BIND="127.0.0.1:$PORT" CHORUS_MEDIA_BIND="127.0.0.1:$MEDIA_PORT" \
  CHORUS_MEDIA_WORKERS=1 CHORUS_LOG=info "$CHORUS_BIN" >"$LOG" 2>&1 &
SERVER_PID=$!
trap cleanup EXIT
server_wait_ready "$PORT" || exit 1

# Participants for the participant routes (rooms and identities as in the config file).
IDENTITIES="$(seq -s, -f 'p-%g' 0 19)"
/usr/bin/python3 "$ROOT/tests/api-fuzz/participants.py" "http://127.0.0.1:$PORT" \
  fuzz-0,fuzz-1,fuzz-2,fuzz-3 "$IDENTITIES" >"$WORK/participants.out" 2>"$WORK/participants.log" &
PARTICIPANTS_PID=$!
for _ in $(seq 1 150); do
  grep -q ready "$WORK/participants.out" 2>/dev/null && break
  if ! kill -0 "$PARTICIPANTS_PID" 2>/dev/null; then
    echo "$TAG the participants did not join:" >&2
    cat "$WORK/participants.log" >&2
    exit 1
  fi
  sleep 0.2
done
grep -q ready "$WORK/participants.out" || { echo "$TAG the participants took over 30 s to join" >&2; exit 1; }

seed=()
if [ -n "${API_FUZZ_SEED:-}" ]; then seed=(--seed "$API_FUZZ_SEED"); fi

# Checks: all of them.
# Operations: all of them, but
# - POST /v1/drain: it starts a drain, after which the server stops and refuses every join
#   (the rest of the run would test a server on its way out). Its body and answers are
#   covered by the control tests (crates/chorus-api/src/control, tests/drain.rs).
# One worker: with two, both threads can make Hypothesis parse schemathesis's source for a
# lambda's description at once, which CPython 3.11 breaks ("AST constructor recursion depth
# mismatch", a runtime error of the run, not of the server); it struck the lobby routes
# every time. One worker took no longer here (35 s against 40 s at 30 examples).
set +e
# From the scratch dir: schemathesis and Hypothesis write their reports and caches there.
(cd "$WORK" && HOME="$WORK" "$SCHEMATHESIS" --config-file "$ROOT/tests/api-fuzz/schemathesis.toml" run "http://127.0.0.1:$PORT/v1/openapi.json" \
  --auth "devkey:devsecret-change-me-0123456789abcdef" \
  --checks all \
  --exclude-operation-id drainServer \
  --max-examples "${API_FUZZ_EXAMPLES:-100}" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database :memory: \
  --no-color \
  "${seed[@]}")
status=$?
set -e

if grep -q "panicked" "$LOG"; then
  echo "$TAG the server panicked" >&2
  server_print_log
  exit 1
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "$TAG the server died during the run" >&2
  server_print_log
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "$TAG schemathesis found failures (exit $status)" >&2
  server_print_log 60
  exit "$status"
fi
echo "$TAG passed" >&2
