#!/usr/bin/env bash
# Browser end-to-end test: builds the server, starts it inside a private network
# namespace that has only loopback, runs tests/browser/e2e.js against it (three headless
# Chromium pages and one headless Firefox page, firefox-esr driven by geckodriver, in one
# call through the demo page), stops the server and exits with the test's code.
#
#   scripts/browser-test.sh               the end-to-end test (tests/browser/e2e.js)
#   scripts/browser-test.sh screen        screen share and last-N on the demo page
#                                         (tests/browser/screen.js)
#   scripts/browser-test.sh hold          hold and resume on the demo page (tests/browser/hold.js)
#   scripts/browser-test.sh pair-switch   the ICE pair-switch test (tests/browser/pair-switch.js):
#                                         the namespace also gets two interfaces with addresses
#                                         of their own (eth1 10.200.0.2, wlan1 10.201.0.2) for the
#                                         page that switches, a default route through lo (the
#                                         plain page's only address is then 127.0.0.1) and an htb
#                                         qdisc on lo whose class 1:20 drops what a filter sends it
#   scripts/browser-test.sh turn-relay    the TURN test (tests/browser/turn-relay.js): coturn
#                                         (deploy/coturn/turnserver.conf, with loopback overrides)
#                                         on 127.0.0.1:3478 in the namespace, the server with
#                                         [turn] pointing at it, and a Chromium page that may only
#                                         use relays (iceTransportPolicy 'relay') beside a plain one
#
#   scripts/browser-test.sh codecs        H.264 next to VP8 (tests/browser/codecs.js): two Chromium
#                                         pages, one sending H.264 (demo page ?codec=h264), each
#                                         decoding the other in the codec it was sent in, and a
#                                         Firefox page (no H.264 here) that gets only the VP8
#
#   scripts/browser-test.sh simulcast     simulcast through the demo page (tests/browser/simulcast.js):
#                                         a page sends its 720p camera in three layers
#                                         (the demo page's default), another (?simulcast=0)
#                                         resizes its tile and receives the layer that fits;
#                                         dynacast turns the unneeded layers off and on
#
#   scripts/browser-test.sh svc           VP9 SVC through the demo page (tests/browser/svc.js): a
#                                         page sends its 720p camera as one VP9 stream in
#                                         L3T3_KEY (?codec=vp9&svc=1), another resizes its tile
#                                         and receives the spatial layer that fits;
#                                         dynacast makes the sender drop to L1T3 and back
#
#   scripts/browser-test.sh av1           AV1 SVC through the demo page (tests/browser/av1.js): a
#                                         page sends its 720p camera as one AV1 stream in
#                                         L3T3_KEY (?codec=av1&svc=1), the server reads its
#                                         layers, another page decodes the base layer at
#                                         every tile size (docs/signaling.md, "AV1")
#
#   scripts/browser-test.sh https         the demo page over the server's built-in HTTPS
#                                         (tests/browser/https.js): a self-signed certificate
#                                         made with openssl, trusted by Chromium and Node only
#
#   scripts/browser-test.sh lobby         the lobby on the demo page (tests/browser/lobby.js): a host
#                                         admits one guest from the lobby (it then decodes the host)
#                                         and rejects another
#
#   scripts/browser-test.sh devices       device choice on the demo page (tests/browser/devices.js):
#                                         switching camera and microphone mid-call (replaceTrack,
#                                         no renegotiation) while the other page decodes on
#
#   CHORUS_BIN=path   use this server binary instead of building target/debug/chorus
#   CHORUS_ARGS="..." extra arguments for the server
#   CHORUS_PORT=7880  HTTP port the server listens on (the test uses http://127.0.0.1:$CHORUS_PORT)
#   E2E_ARTIFACTS=dir where screenshots and logs go on failure (default: a temp dir)
#   CHORUS_STUB=1     test the page against tests/browser/stub (a Node+Chromium stand-in
#                     for the server) instead of the real server; no cargo needed
#
# Needs root (or unprivileged user namespaces) for `unshare -n`, and scripts/setup.sh done
# (Chromium, Firefox ESR, geckodriver in ~/.cargo/bin or on PATH, tests/browser/node_modules).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${CHORUS_PORT:-7880}"
TEST="${1:-e2e}"
case "$TEST" in
  e2e) TEST_JS=tests/browser/e2e.js; TEST_TIMEOUT=180 ;;
  pair-switch) TEST_JS=tests/browser/pair-switch.js; TEST_TIMEOUT=110 ;;
  codecs) TEST_JS=tests/browser/codecs.js; TEST_TIMEOUT=130 ;;
  turn-relay) TEST_JS=tests/browser/turn-relay.js; TEST_TIMEOUT=90 ;;
  screen) TEST_JS=tests/browser/screen.js; TEST_TIMEOUT=110 ;;
  https) TEST_JS=tests/browser/https.js; TEST_TIMEOUT=100 ;;
  hold) TEST_JS=tests/browser/hold.js; TEST_TIMEOUT=110 ;;
  lobby) TEST_JS=tests/browser/lobby.js; TEST_TIMEOUT=110 ;;
  simulcast) TEST_JS=tests/browser/simulcast.js; TEST_TIMEOUT=90 ;;
  svc) TEST_JS=tests/browser/svc.js; TEST_TIMEOUT=110 ;;
  av1) TEST_JS=tests/browser/av1.js; TEST_TIMEOUT=110 ;;
  devices) TEST_JS=tests/browser/devices.js; TEST_TIMEOUT=100 ;;
  *) echo "[browser-test] unknown test \"$TEST\" (e2e, pair-switch, codecs, turn-relay, screen, https, hold, lobby, simulcast, svc, av1 or devices)" >&2; exit 2 ;;
esac
if [ "$TEST" = turn-relay ] && ! command -v turnserver >/dev/null 2>&1; then
  echo "[browser-test] turnserver (coturn) missing: run scripts/setup.sh" >&2
  exit 1
fi

if [ "${CHORUS_IN_NETNS:-0}" != 1 ]; then
  if [ "${CHORUS_STUB:-0}" = 1 ]; then
    CHORUS_BIN="$ROOT/tests/browser/stub/stub-server.js"
  elif [ -z "${CHORUS_BIN:-}" ]; then
    echo "[browser-test] building chorus-server (debug)" >&2
    cargo build -p chorus-server
    CHORUS_BIN="$ROOT/target/debug/chorus"
  fi
  if [ "${CHORUS_STUB:-0}" != 1 ] && [ ! -x "$CHORUS_BIN" ]; then
    echo "[browser-test] no server binary at $CHORUS_BIN" >&2
    exit 1
  fi
  if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
    echo "[browser-test] tests/browser/node_modules missing: run scripts/setup.sh" >&2
    exit 1
  fi
  # Re-run this script inside a new network namespace (only `lo`), so every packet
  # stays on 127.0.0.1 and ICE sees no other interface.
  unshare_cmd=(unshare -n)
  if [ "$(id -u)" -ne 0 ]; then unshare_cmd=(unshare -r -n); fi
  exec "${unshare_cmd[@]}" env CHORUS_IN_NETNS=1 CHORUS_BIN="$CHORUS_BIN" CHORUS_STUB="${CHORUS_STUB:-0}" bash "$ROOT/scripts/browser-test.sh" "$@"
fi

# ---- inside the namespace
ip link set lo up

ETH_ADDR=10.200.0.2
WLAN_ADDR=10.201.0.2
PAIR_SWITCH_ADDRS="$ETH_ADDR $WLAN_ADDR"
if [ "$TEST" = pair-switch ]; then
  # Two interfaces with addresses of their own, like a laptop's Ethernet and Wi-Fi (Chromium
  # reads the adapter type from the name). Each is one end of a veth pair whose other end
  # has no IPv4 address; nothing is routed over them: the server (127.0.0.1) and these
  # addresses are all local, so every packet still flows through lo and stays here.
  for pair in "eth1 $ETH_ADDR" "wlan1 $WLAN_ADDR"; do
    read -r dev addr <<<"$pair"
    ip link add "$dev" type veth peer name "${dev}p"
    # No IPv6 on them: a link-local address would come a second or two after the link
    # is up, once Chromium runs, and it fails the page's loads with ERR_NETWORK_CHANGED.
    sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" "net.ipv6.conf.${dev}p.disable_ipv6=1" || true
    ip addr add "$addr/24" dev "$dev"
    ip link set "$dev" up
    ip link set "${dev}p" up
  done
  # The plain page uses only the default route's address (Chromium's
  # default_public_interface_only): make that 127.0.0.1. Nothing leaves: the namespace
  # has no link to anywhere.
  ip route add default dev lo src 127.0.0.1
  # Everything to the switching page's addresses passes lo: an htb root whose default
  # class passes all, and a class 1:20 whose queue holds nothing. The test sends the
  # packets to one address there (tc filter ... flowid 1:20) to make Chromium switch.
  tc qdisc add dev lo root handle 1: htb default 10 r2q 100000
  tc class add dev lo parent 1: classid 1:10 htb rate 10gbit quantum 65536
  tc class add dev lo parent 1: classid 1:20 htb rate 10gbit quantum 65536
  tc qdisc add dev lo parent 1:20 handle 20: pfifo limit 0
fi

TURN_PID=""
TURN_DIR=""
TURN_URL="turn:127.0.0.1:3478?transport=udp"
turn_stop() {
  if [ -n "$TURN_PID" ]; then
    kill "$TURN_PID" 2>/dev/null || true
    wait "$TURN_PID" 2>/dev/null || true
    TURN_PID=""
  fi
}
if [ "$TEST" = turn-relay ]; then
  # The deploy sample itself, made to fit loopback: listen and relay on 127.0.0.1, allow
  # relaying to 127.0.0.1 (where Chorus is), no TLS (no certificate here), its files in a
  # temp dir. Its static-auth-secret is the one Chorus is given below.
  TURN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/chorus-coturn.XXXXXX")"
  TURN_SECRET="$(sed -n 's/^static-auth-secret=//p' deploy/coturn/turnserver.conf)"
  turnserver -c "$ROOT/deploy/coturn/turnserver.conf" \
    --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 \
    --allowed-peer-ip=127.0.0.1 --allow-loopback-peers --no-tls \
    --verbose --log-file="$TURN_DIR/turn.log" --simple-log --no-stdout-log \
    --pidfile="$TURN_DIR/turn.pid" --userdb="$TURN_DIR/turndb" >/dev/null 2>&1 &
  TURN_PID=$!
  for _ in $(seq 1 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/3478) 2>/dev/null; then break; fi
    if ! kill -0 "$TURN_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! (exec 3<>/dev/tcp/127.0.0.1/3478) 2>/dev/null; then
    echo "[browser-test] coturn did not start on 127.0.0.1:3478; its log:" >&2
    cat "$TURN_DIR/turn.log" >&2 || true
    turn_stop
    exit 1
  fi
  echo "[browser-test] coturn on 127.0.0.1:3478 (log: $TURN_DIR/turn.log)" >&2
  export CHORUS_TURN_URLS="$TURN_URL" CHORUS_TURN_SECRET="$TURN_SECRET"
fi
SCHEME=http
if [ "$TEST" = https ]; then
  # A certificate for 127.0.0.1 that only this test's Chromium (by its public key's hash)
  # and Node (NODE_EXTRA_CA_CERTS) trust; the server serves HTTPS and WSS with it.
  TLS_DIR="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
  export CHORUS_TLS_CERT_FILE="$TLS_DIR/cert.pem" CHORUS_TLS_KEY_FILE="$TLS_DIR/key.pem"
  export NODE_EXTRA_CA_CERTS="$TLS_DIR/cert.pem"
  CHORUS_CERT_SPKI="$(openssl x509 -in "$TLS_DIR/cert.pem" -pubkey -noout \
    | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
  export CHORUS_CERT_SPKI
  SCHEME=https
fi

LOG="$(mktemp "${TMPDIR:-/tmp}/chorus-server.XXXXXX.log")"
echo "[browser-test] starting $CHORUS_BIN ${CHORUS_ARGS:-} (log: $LOG)" >&2
if [ "${CHORUS_STUB:-0}" = 1 ]; then
  PORT="$PORT" node "$CHORUS_BIN" >"$LOG" 2>&1 &
else
  # shellcheck disable=SC2086
  RUST_LOG="${RUST_LOG:-info}" "$CHORUS_BIN" ${CHORUS_ARGS:-} >"$LOG" 2>&1 &
fi
SERVER_PID=$!

TAG="[browser-test]"
# shellcheck source=lib/server.sh
. "$ROOT/scripts/lib/server.sh"
trap 'server_stop; turn_stop' EXIT
server_wait_ready "$PORT" || exit 1

rc=0
CHORUS_URL="$SCHEME://127.0.0.1:$PORT" PAIR_SWITCH_ADDRS="$PAIR_SWITCH_ADDRS" PAIR_SWITCH_DEV=lo \
  TURN_URL="$TURN_URL" TURN_LOG="${TURN_DIR:+$TURN_DIR/turn.log}" \
  timeout --kill-after=10 "$TEST_TIMEOUT" node "$TEST_JS" || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "[browser-test] $TEST_JS exceeded $TEST_TIMEOUT s" >&2
  server_print_log
  if [ -n "$TURN_DIR" ]; then
    echo "----- coturn log ($TURN_DIR/turn.log), last 60 lines -----" >&2
    tail -n 60 "$TURN_DIR/turn.log" >&2 || true
  fi
fi
server_stop
turn_stop
trap - EXIT
if [ -n "$TURN_DIR" ]; then
  if [ "$rc" -eq 0 ]; then rm -rf "$TURN_DIR"; else echo "[browser-test] coturn log kept at $TURN_DIR/turn.log" >&2; fi
fi
if [ "$rc" -eq 0 ] && [ -n "${CHORUS_E2E_SHOW_LOG:-}" ]; then server_print_log; fi
if [ "$rc" -eq 0 ] && [ -z "${CHORUS_KEEP_LOG:-}" ]; then rm -f "$LOG"; else echo "[browser-test] server log kept at $LOG" >&2; fi
if [ -n "${TLS_DIR:-}" ]; then rm -rf "$TLS_DIR"; fi
echo "[browser-test] $TEST: $([ "$rc" -eq 0 ] && echo PASS || echo "FAIL (exit $rc)")" >&2
exit "$rc"
