# Shared by the scripts that run the server in a private network namespace for a test
# (scripts/browser-test.sh, tests/webrtcbin/run.sh). Source it, start the server in the
# background with its output in "$LOG", set SERVER_PID and TAG, then:
#   trap server_stop EXIT; server_wait_ready "$PORT" || exit 1; ...; server_print_log N

# Stops the server: SIGINT (a stop now; SIGTERM would drain first), up to 5 s to
# finish, then SIGKILL.
server_stop() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$TAG server did not stop within 5 s of SIGINT; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
}

# The last N (default 300) lines of the server's log, without colour codes.
server_print_log() {
  echo "----- server log ($LOG), last ${1:-300} lines -----" >&2
  tail -n "${1:-300}" "$LOG" | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
  echo "----- end of server log -----" >&2
}

# Waits (at most 30 s) until the server accepts connections on 127.0.0.1:PORT; prints
# the log and fails if it exits first or never does.
server_wait_ready() {
  local port="$1"
  for _ in $(seq 1 150); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$TAG the server exited during startup" >&2
      server_print_log
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "$TAG the server did not answer on 127.0.0.1:$port within 30 s" >&2
  server_print_log
  return 1
}
