#!/usr/bin/env bash
# Installs (once) and starts / stops a real SMTP server for the tests:
# aiosmtpd from PyPI, with scripts/smtp_sink.py as its handler, which
# stores every message it receives, raw, as <mail dir>/<n>.eml.
#
#   scripts/smtp.sh start   # prints, one per line:
#                           #   PORTCULLIS_TEST_SMTP_URL=smtp://127.0.0.1:PORT
#                           #   PORTCULLIS_TEST_SMTP_DIR=/absolute/mail/dir
#   scripts/smtp.sh stop
#
# State lives in $SMTP_SINK_DIR (default target/smtp): the venv (kept
# between runs), a fresh mail directory per start, the log, pid, port and
# env files. The server binds a free port by itself (no race with other
# programs); set SMTP_PORT to ask for a given one (start fails if it is
# taken). Starting again stops the previous server first.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SMTP_SINK_DIR:-target/smtp}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
VENV=$DIR/venv
MAIL=$DIR/mail
AIOSMTPD_VERSION=1.4.6
SINK=$PWD/scripts/smtp_sink.py

# The pinned set, in a venv kept between runs (scripts/venv.sh).
install() {
  bash scripts/venv.sh "$VENV" "aiosmtpd==$AIOSMTPD_VERSION" >/dev/null
}

# True when $1 is a live process running our sink (not a recycled pid).
is_sink() {
  local args
  if [ -d /proc/self ]; then
    args=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  elif command -v ps >/dev/null 2>&1; then
    args=$(ps -p "$1" -o args= 2>/dev/null) || return 1
  else
    kill -0 "$1" 2>/dev/null
    return
  fi
  case $args in *smtp_sink.py*) return 0 ;; *) return 1 ;; esac
}

# True while $1, the server just started, is alive. Not is_sink: until
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
    if [ -n "$pid" ] && is_sink "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        is_sink "$pid" || break
        sleep 0.1
      done
      if is_sink "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -f "$DIR/pid" "$DIR/port" "$DIR/env"
}

fail() {
  echo "aiosmtpd did not start: $1; log ($DIR/log):" >&2
  cat "$DIR/log" >&2 || true
  stop
  exit 1
}

# Waits for the sink to write the port it bound, then for the port to
# accept connections; prints the port.
wait_for() { # pid
  local port=
  for _ in $(seq 150); do
    if [ -s "$DIR/port" ]; then
      port=$(cat "$DIR/port")
      break
    fi
    alive "$1" || fail "the server exited"
    sleep 0.1
  done
  [ -n "$port" ] || fail "no port after 15 s"
  for _ in $(seq 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))"; then
      echo "$port"
      return 0
    fi
    alive "$1" || fail "the server exited"
    sleep 0.1
  done
  fail "port $port does not accept connections"
}

case "${1:-}" in
  start)
    install
    stop
    rm -rf "$MAIL"
    mkdir -p "$MAIL"
    nohup "$VENV/bin/python" "$SINK" --host 127.0.0.1 --port "${SMTP_PORT:-0}" \
      --dir "$MAIL" --port-file "$DIR/port" </dev/null >"$DIR/log" 2>&1 &
    PID=$!
    echo "$PID" >"$DIR/pid"
    PORT=$(wait_for "$PID")
    printf 'PORTCULLIS_TEST_SMTP_URL=smtp://127.0.0.1:%s\nPORTCULLIS_TEST_SMTP_DIR=%s\n' \
      "$PORT" "$MAIL" | tee "$DIR/env"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
