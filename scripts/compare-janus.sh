#!/usr/bin/env bash
# Janus and Chorus side by side under the same load, on this machine, in one command:
# one publisher (Opus + ~1 Mbit/s VP8) fanned out to N subscribe-only WebRTC clients,
# first against Janus's VideoRoom, then against Chorus, each measured by
# chorus-loadtest (server CPU per egress packet from /proc/<pid>/stat, loss, RSS).
#
#   scripts/compare-janus.sh                  # N=100 subscribers, 10 s window
#   N=200 SECONDS=20 scripts/compare-janus.sh
#   JANUS_EVENT_LOOPS=0 scripts/compare-janus.sh   # Janus's default: a thread per handle
#
# Janus runs with `event_loops` = the number of cores (its setting for many handles;
# the default, one loop thread per handle, cost about twice the CPU per packet here).
#
# Installs Janus (Debian package `janus`) if missing, builds the release binaries, and
# runs both servers one after the other inside one private network namespace that has
# only loopback, so nothing is exposed and nothing else shares the path. Needs root
# (apt-get, unshare -n, a veth pair). Reports go to $OUT (default: a fresh temp dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[compare-janus] %s\n' "$*" >&2; }

JANUS_LIB=/usr/lib/x86_64-linux-gnu/janus
JANUS_URL=http://127.0.0.1:8088/janus
CHORUS_URL=http://127.0.0.1:7880

if [ "${1:-}" != "--in-namespace" ]; then
  # bash sets SECONDS itself (time since start); only a value from the caller counts.
  export CJ_SECONDS="$(printenv SECONDS || echo 10)"
  export CJ_N="${N:-100}"
  export CJ_LOOPS="${JANUS_EVENT_LOOPS:-$(nproc)}"
  if [ "$(id -u)" -ne 0 ]; then
    log "needs root (apt-get, unshare -n, veth)"; exit 1
  fi

  have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
  missing=()
  for pkg in janus iproute2 curl; do have_pkg "$pkg" || missing+=("$pkg"); done
  command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # The package enables a system Janus on all interfaces; this script needs none.
    if [[ " ${missing[*]} " == *" janus "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now janus.service >/dev/null 2>&1 || true
    fi
  fi
  log "$(janus --version 2>/dev/null | head -1)"

  log "building release binaries"
  cargo build --release -q -p chorus-server -p chorus-loadtest

  export CJ_WORK="${OUT:-$(mktemp -d /tmp/compare-janus.XXXXXX)}"
  mkdir -p "$CJ_WORK/janus-conf"
  exec unshare -n "$0" --in-namespace
fi

# ---- inside the private network namespace -------------------------------------------
WORK="$CJ_WORK"; N="$CJ_N"; WINDOW="$CJ_SECONDS"; LOOPS="$CJ_LOOPS"
CONF="$WORK/janus-conf"
JPID=""; CPID=""
cleanup() {
  for pid in $JPID $CPID; do kill "$pid" 2>/dev/null || true; done
  for pid in $JPID $CPID; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

ip link set lo up
# libnice (Janus's ICE) never gathers candidates on a loopback interface: give it a
# veth pair that carries 127.0.0.1 too (namespace-private) and enforce that interface.
ip link add jv0 type veth peer name jv1
ip link set jv1 up
ip link set jv0 up
ip addr add 127.0.0.1/32 dev jv0
ulimit -n 20000   # ~4 descriptors per participant in the harness

# Janus config: VideoRoom + HTTP transport only, on 127.0.0.1, RTP ports 20000-20999.
others() { ls "$JANUS_LIB/$1" | grep '\.so$' | grep -v "$2" | paste -sd, - || true; }
cat > "$CONF/janus.jcfg" <<EOF
general: {
	configs_folder = "$CONF"
	plugins_folder = "$JANUS_LIB/plugins"
	transports_folder = "$JANUS_LIB/transports"
	events_folder = "$JANUS_LIB/events"
	loggers_folder = "$JANUS_LIB/loggers"
	debug_level = 4
	interface = "127.0.0.1"
	session_timeout = 60
	event_loops = $LOOPS
}
media: {
	ipv6 = false
	rtp_port_range = "20000-20999"
}
nat: {
	ice_lite = false
	ice_tcp = false
	full_trickle = true
	ice_enforce_list = "jv0"
}
plugins: {
	disable = "$(others plugins libjanus_videoroom.so)"
}
transports: {
	disable = "$(others transports libjanus_http.so)"
}
loggers: {
	disable = "$(others loggers '^$')"
}
events: {
	broadcast = false
}
EOF
cat > "$CONF/janus.transport.http.jcfg" <<EOF
general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = 8088
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
EOF
printf 'general: {\n}\n' > "$CONF/janus.plugin.videoroom.jcfg"

wait_http() {
  for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

# The harness's phases are bounded; this is a backstop: joins at 20/s, 30 s join
# timeout, 30 s media timeout, the window, and a margin.
BOUND=$(( N / 20 + 30 + 30 + WINDOW + 60 ))
# The namespace's own UDP counters: datagrams the kernel dropped for a full receive or
# send buffer tell loss in a socket (server or harness) from loss inside a server.
udp_drops() {
  awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else for (i = 1; i <= NF; i++) v[k[i]] = $i }
       END { print v["RcvbufErrors"] + 0, v["SndbufErrors"] + 0 }' /proc/net/snmp
}
loadtest() {
  local name=$1; shift
  local before after
  before=$(udp_drops)
  timeout "$BOUND" target/release/chorus-loadtest --scenario fanout --publishers 1 \
    --subscribers "$N" --seconds "$WINDOW" --quiet --json "$WORK/$name.json" "$@" \
    > "$WORK/$name.txt" || log "$name run failed"
  after=$(udp_drops)
  set -- $before $after
  echo "kernel UDP drops    $(( $3 - $1 )) for a full receive buffer, $(( $4 - $2 )) for a full send buffer (whole run)" >> "$WORK/$name.txt"
}

log "Janus: starting (log $WORK/janus.log)"
janus -C "$CONF/janus.jcfg" -F "$CONF" -o -N -L "$WORK/janus.log" >/dev/null 2>&1 &
JPID=$!
wait_http "$JANUS_URL/info" || { log "Janus did not come up; see $WORK/janus.log"; exit 1; }
log "Janus: fanout 1 -> $N subscribers, ${WINDOW} s window"
loadtest janus --target janus --janus-url "$JANUS_URL" --janus-pid "$JPID"
kill "$JPID"; wait "$JPID" 2>/dev/null || true; JPID=""

log "Chorus: starting (log $WORK/chorus.log)"
target/release/chorus > "$WORK/chorus.log" 2>&1 &
CPID=$!
wait_http "$CHORUS_URL/" || { log "Chorus did not come up; see $WORK/chorus.log"; exit 1; }
log "Chorus: fanout 1 -> $N subscribers, ${WINDOW} s window"
loadtest chorus --target chorus --url "$CHORUS_URL" --server-pid "$CPID"
kill "$CPID"; wait "$CPID" 2>/dev/null || true; CPID=""

field() { sed -n "s/^ *\"$2\": \([-0-9.e]*\),*$/\1/p" "$WORK/$1.json" 2>/dev/null | head -1; }
echo "=== Janus ($(janus --version 2>/dev/null | sed -n 's/^Janus version: [0-9]* (\(.*\))/\1/p') VideoRoom, event_loops = $LOOPS) ==="
cat "$WORK/janus.txt" 2>/dev/null || true
echo
echo "=== Chorus ==="
cat "$WORK/chorus.txt" 2>/dev/null || true
echo
J=$(field janus cpu_per_egress_packet_micros); C=$(field chorus cpu_per_egress_packet_micros)
awk -v j="${J:-0}" -v c="${C:-0}" -v n="$N" -v w="$WINDOW" 'BEGIN {
  printf "server CPU per egress packet (fanout 1 -> %d, %d s): Janus %.2f µs, Chorus %.2f µs\n", n, w, j, c
  if (j > 0 && c > 0) printf "ratio Janus / Chorus: %.2f\n", j / c
  else print "ratio Janus / Chorus: n/a (a run failed; see the summaries above)"
}'
echo "(reports, logs and the Janus config: $WORK)"
