#!/usr/bin/env bash
# Installs (once) and starts / stops SecantusDB, a MongoDB wire-compatible
# server from PyPI, for the tests.
#
#   scripts/secantus.sh start   # prints the connection string
#   scripts/secantus.sh stop
#
# State lives in $SECANTUS_DIR (default target/secantus): the venv (kept
# between runs), a fresh data directory per start, the log, pid and uri.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SECANTUS_DIR:-target/secantus}
VENV=$DIR/venv
VERSION='SecantusDB==0.7.0b3'

# The pinned set, in a venv kept between runs (scripts/venv.sh).
install() {
  bash scripts/venv.sh "$VENV" "$VERSION" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # port
  for _ in $(seq 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))"; then
      return 0
    fi
    sleep 0.2
  done
  echo "SecantusDB did not start; log:" >&2
  cat "$DIR/log" >&2 || true
  return 1
}

case "${1:-}" in
  start)
    install
    "$0" stop >/dev/null 2>&1 || true
    PORT=${SECANTUS_PORT:-$(free_port)}
    rm -rf "$DIR/data"
    mkdir -p "$DIR/data"
    nohup "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$PORT" --storage-path "$DIR/data" \
      >"$DIR/log" 2>&1 &
    echo $! >"$DIR/pid"
    wait_for "$PORT"
    echo "mongodb://127.0.0.1:$PORT/?directConnection=true" | tee "$DIR/uri"
    ;;
  stop)
    if [ -f "$DIR/pid" ]; then
      kill "$(cat "$DIR/pid")" 2>/dev/null || true
      rm -f "$DIR/pid"
    fi
    ;;
  bin)
    install
    echo "$VENV/bin/secantusd-py"
    ;;
  *)
    echo "usage: $0 start|stop|bin" >&2
    exit 2
    ;;
esac
