#!/usr/bin/env bash
# Interop test with a third-party WebRTC stack: two GStreamer webrtcbin clients (libnice
# ICE, defaults) join a Chorus room, publish, subscribe, renegotiate, request keyframes,
# stay 25 s and leave (tests/webrtcbin/interop.py). Runs the server and the clients in a
# private network namespace, so every packet stays on this machine's 127.0.0.1.
#
#   CHORUS_BIN=path      use this server binary instead of building target/debug/chorus
#   CHORUS_ARGS="..."    extra arguments for the server
#   CHORUS_LOG=filter    server log filter (default: the server's, plus chorus_room=debug)
#   CHORUS_KEEP_LOG=1    keep the server log also when the test passes
#   WEBRTCBIN_HOLD_SECS  how long both stay connected (default 25)
#
# Needs root (or unprivileged user namespaces) for `unshare -n`, and scripts/setup.sh done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PORT=7880
TAG="[webrtcbin-test]"

if [ "${CHORUS_IN_NETNS:-0}" != 1 ]; then
  if [ -z "${CHORUS_BIN:-}" ]; then
    echo "$TAG building chorus-server (debug)" >&2
    cargo build -p chorus-server
    CHORUS_BIN="$ROOT/target/debug/chorus"
  fi
  if [ ! -x "$CHORUS_BIN" ]; then
    echo "$TAG no server binary at $CHORUS_BIN" >&2
    exit 1
  fi
  if ! /usr/bin/python3 -c 'import gi, websockets; gi.require_version("GstWebRTC", "1.0")' 2>/dev/null; then
    echo "$TAG python3-gi, gir1.2-gst-plugins-bad-1.0 or python3-websockets missing: run scripts/setup.sh" >&2
    exit 1
  fi
  unshare_cmd=(unshare -n)
  if [ "$(id -u)" -ne 0 ]; then unshare_cmd=(unshare -r -n); fi
  exec "${unshare_cmd[@]}" env CHORUS_IN_NETNS=1 CHORUS_BIN="$CHORUS_BIN" bash "$ROOT/tests/webrtcbin/run.sh" "$@"
fi

# ---- inside the namespace: only lo, plus a veth carrying 127.0.0.1 for libnice, which
# never gathers candidates on a loopback interface. (Named vmnet0 so that a Chromium in
# the same namespace would leave it out.) Nothing routes out of this namespace.
ip link set lo up
ip link add vmnet0 type veth peer name vmnet1
ip link set vmnet0 up
ip link set vmnet1 up
ip addr add 127.0.0.1/32 dev vmnet0
# No IPv6 link-local candidates: the server is IPv4-only here.
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true

LOG="$(mktemp "${TMPDIR:-/tmp}/chorus-webrtcbin.XXXXXX.log")"
echo "$TAG starting $CHORUS_BIN ${CHORUS_ARGS:-} (log: $LOG)" >&2
# shellcheck disable=SC2086
NO_COLOR=1 CHORUS_LOG="${CHORUS_LOG:-info,chorus_room=debug,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_sctp=error,rtc_srtp=error,rtc_interceptor=error}" "$CHORUS_BIN" ${CHORUS_ARGS:-} >"$LOG" 2>&1 &
SERVER_PID=$!

# shellcheck source=../../scripts/lib/server.sh
. "$ROOT/scripts/lib/server.sh"
trap server_stop EXIT
server_wait_ready "$PORT" || exit 1

rc=0
CHORUS_URL="http://127.0.0.1:$PORT" timeout --kill-after=5 88 \
  /usr/bin/python3 -u tests/webrtcbin/interop.py || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "$TAG interop.py exceeded 88 s" >&2
  server_print_log 150
fi
server_stop
trap - EXIT
if [ "$rc" -eq 0 ] && [ -z "${CHORUS_KEEP_LOG:-}" ]; then rm -f "$LOG"; else echo "$TAG server log kept at $LOG" >&2; fi
echo "$TAG $([ "$rc" -eq 0 ] && echo PASS || echo "FAIL (exit $rc)")" >&2
exit "$rc"
