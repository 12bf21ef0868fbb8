#!/usr/bin/env bash
# Installs (once) and starts / stops a real OpenID provider for the OAuth
# tests: oidc-provider-mock 0.3.4 from PyPI (every dependency pinned in
# scripts/oidc/requirements.txt), served by scripts/oidc/serve.py.
#
#   scripts/oidc.sh start   # prints PORTCULLIS_TEST_OIDC_ISSUER=http://127.0.0.1:PORT
#   scripts/oidc.sh stop
#
# The tests pick the user and claims through the provider's own API
# (`PUT /users/{sub}` with the claims as JSON), then authorize by posting
# `sub=...` (or `action=deny`) to its authorization endpoint, as a browser
# submitting its form would.
#
# State lives in $OIDC_DIR (default target/oidc): the venv (kept between
# runs), the log, pid, port and env files. The server binds a free port by
# itself (no race with other programs); set OIDC_PORT to ask for a given one
# (start fails if it is taken). Starting again stops the previous server.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${OIDC_DIR:-target/oidc}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
VENV=$DIR/venv
REQUIREMENTS=$PWD/scripts/oidc/requirements.txt
SERVE=$PWD/scripts/oidc/serve.py

# The pinned set, in a venv kept between runs (scripts/venv.sh).
install() {
  bash scripts/venv.sh "$VENV" -r "$REQUIREMENTS" >/dev/null
}

# True when $1 is a live process running our server (not a recycled pid).
is_server() {
  local args
  if [ -d /proc/self ]; then
    args=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  elif command -v ps >/dev/null 2>&1; then
    args=$(ps -p "$1" -o args= 2>/dev/null) || return 1
  else
    kill -0 "$1" 2>/dev/null
    return
  fi
  case $args in *oidc/serve.py*) return 0 ;; *) return 1 ;; esac
}

# True while $1, the server just started, is alive. Not is_server: until
# the child has exec'd the server, its command line is still this
# script's, and a check then would take it for dead (a race that failed
# one start in five).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  if [ -r "/proc/$1/stat" ]; then
    # A zombie (state Z, field 3) has exited.
    case $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) in Z) return 1 ;; esac
  fi
  return 0
}

stop() {
  if [ -f "$DIR/pid" ]; then
    local pid
    pid=$(cat "$DIR/pid")
    if [ -n "$pid" ] && is_server "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        is_server "$pid" || break
        sleep 0.1
      done
      if is_server "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -f "$DIR/pid" "$DIR/port" "$DIR/env"
}

fail() {
  echo "oidc-provider-mock did not start: $1; log ($DIR/log):" >&2
  cat "$DIR/log" >&2 || true
  stop
  exit 1
}

# Waits for the server to write the port it bound, then for its discovery
# document to answer 200; prints the port.
wait_for() { # pid
  local port=
  for _ in $(seq 300); do
    if [ -s "$DIR/port" ]; then
      port=$(cat "$DIR/port")
      break
    fi
    alive "$1" || fail "the server exited"
    sleep 0.1
  done
  [ -n "$port" ] || fail "no port after 30 s"
  for _ in $(seq 150); do
    if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
url = "http://127.0.0.1:%s/.well-known/openid-configuration" % sys.argv[1]
with urllib.request.urlopen(url, timeout=1) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
      echo "$port"
      return 0
    fi
    alive "$1" || fail "the server exited"
    sleep 0.1
  done
  fail "discovery on port $port does not answer"
}

case "${1:-}" in
  start)
    install
    stop
    mkdir -p "$DIR"
    nohup "$VENV/bin/python" "$SERVE" --host 127.0.0.1 --port "${OIDC_PORT:-0}" \
      --port-file "$DIR/port" </dev/null >"$DIR/log" 2>&1 &
    PID=$!
    echo "$PID" >"$DIR/pid"
    PORT=$(wait_for "$PID")
    printf 'PORTCULLIS_TEST_OIDC_ISSUER=http://127.0.0.1:%s\n' "$PORT" | tee "$DIR/env"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
