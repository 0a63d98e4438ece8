#!/usr/bin/env bash
# Installs what building and testing Chorus needs, and only what is missing.
# Idempotent; needs root (or passwordless sudo) when something has to be installed.
#
#   scripts/setup.sh            everything: build deps, Chromium, Firefox ESR and geckodriver,
#                               Node, test packages
#   scripts/setup.sh --server   only what building and running the server needs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-all}"

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

have_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
want() { have_pkg "$1" || missing+=("$1"); }

# Building the server (opus links libopus; some crates build C with cmake).
want pkg-config
want cmake
want build-essential
want libopus-dev
# `ip netns` and `tc` for the capped-link test (crates/chorus-server/tests/adapt.rs).
want iproute2

if [ "$MODE" != "--server" ]; then
  # Browser end-to-end test: Debian's Chromium, unshare/ip for a private network namespace.
  want chromium
  # The e2e test's Firefox page: Debian's Firefox ESR, driven through geckodriver (below).
  want firefox-esr
  want iproute2
  # The TURN relay test (scripts/browser-test.sh turn-relay): Debian's coturn. Its package
  # starts no daemon here (no init); the test runs its own turnserver in a namespace.
  want coturn
  command -v unshare >/dev/null 2>&1 || want util-linux
  if ! command -v node >/dev/null 2>&1; then
    want nodejs
    want npm
  elif ! command -v npm >/dev/null 2>&1; then
    want npm
  fi
  # Third-party interop test (tests/webrtcbin): GStreamer webrtcbin (libnice ICE) driven
  # from Debian's /usr/bin/python3 through gi, signaling over python3-websockets.
  want python3-gi
  want python3-websockets
  want gir1.2-gstreamer-1.0
  want gir1.2-gst-plugins-base-1.0
  want gir1.2-gst-plugins-bad-1.0
  want gstreamer1.0-plugins-base
  want gstreamer1.0-plugins-good
  want gstreamer1.0-plugins-bad
  want gstreamer1.0-nice
  # The plain-RTP test (crates/chorus-server/tests/plain_rtp.rs, in `cargo test`): ffmpeg
  # plays a phone, sending PCMU to Chorus and recording what it gets back.
  want ffmpeg
  # Control API fuzzing (scripts/api-fuzz.sh): schemathesis from PyPI in a venv (below).
  want python3-venv
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing packages ${missing[*]} and no apt-get; install them by hand"
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    log "missing packages ${missing[*]}; run this script as root"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "system packages present"
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  log "cargo not found: install Rust (https://rustup.rs) first"
  exit 1
fi

if [ "$MODE" != "--server" ]; then
  # geckodriver (W3C WebDriver for Firefox) is not packaged in Debian; it builds from its
  # crates.io source (about 3 minutes on 2 cores) into ~/.cargo/bin.
  if command -v geckodriver >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/geckodriver" ]; then
    log "geckodriver present"
  else
    log "installing geckodriver (cargo install geckodriver --locked)"
    CARGO="$(command -v cargo || echo "$HOME/.cargo/bin/cargo")"
    "$CARGO" install geckodriver --locked
  fi

  BT="$ROOT/tests/browser"
  if [ ! -d "$BT/node_modules/playwright-core" ]; then
    log "installing browser test packages in tests/browser"
    # Never let Playwright download a browser: the test drives /usr/bin/chromium.
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ -f "$BT/package-lock.json" ]; then
      (cd "$BT" && npm ci --no-audit --no-fund)
    else
      (cd "$BT" && npm install --no-audit --no-fund)
    fi
  else
    log "browser test packages present"
  fi

  # schemathesis, pinned, in a venv of Debian's python3 (outside the repository, so that
  # no checkout carries it); scripts/api-fuzz.sh finds it there.
  SCHEMATHESIS_VERSION=4.32.5
  VENV="${XDG_CACHE_HOME:-$HOME/.cache}/chorus/schemathesis-venv"
  if "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
    log "schemathesis $SCHEMATHESIS_VERSION present"
  else
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    PY=/usr/bin/python3
    [ -x "$PY" ] || PY="$(command -v python3)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
fi
log "done"
