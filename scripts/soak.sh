#!/usr/bin/env bash
# Soak test of the release demo server with wrk: mixed traffic (GET
# /auth/me, chained refresh, login, register, and a few wrong-password
# sign-ins; see scripts/load/soak.lua for the mix) for 60 s at 64
# connections, on MemoryStore and then on MongoStore. Rate limits stay on,
# as in production: the server trusts 127.0.0.1 as a proxy and the clients
# send X-Forwarded-For, so the limits see many clients.
#
# For each store it prints the responses per request kind and status, the
# latency p50/p99, socket errors, and the server's RSS at the start, every
# 10 s and at the end. It fails (exit 1) on any answer other than the
# intended ones (200/201, and 401/429 for the wrong-password sign-ins), on
# any socket error or timeout, and on any ERROR in the server's log.
#
#   scripts/soak.sh                                   # 60 s, 64 connections, both stores
#   DURATION=5s STORES=memory scripts/soak.sh         # a quick check of one store
#   SOAK_MONGODB_URI=mongodb://... scripts/soak.sh    # MongoStore on your server
#
# Variables: DURATION (60s), CONNECTIONS (64, at most 150), STORES
# ("memory mongo"), PORT (18100), SOAK_MONGODB_URI (default: start
# SecantusDB, the MongoDB wire server of the tests, through
# scripts/secantus.sh in SECANTUS_DIR, default target/soak/secantus, so a
# running scripts/test.sh keeps its own). Logs: target/soak/.
#
# Needs wrk (installed with apt-get when missing) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60s}
CONNECTIONS=${CONNECTIONS:-64}
STORES=${STORES:-memory mongo}
PORT=${PORT:-18100}
URL="http://127.0.0.1:$PORT"
TARGET=${CARGO_TARGET_DIR:-target}
WORK=target/soak
export SECANTUS_DIR=${SECANTUS_DIR:-$WORK/secantus}
if [ "$CONNECTIONS" -lt 1 ] || [ "$CONNECTIONS" -gt 150 ]; then
  echo "CONNECTIONS must be 1..150 (client IPs are 10.(100+thread).x.y)" >&2
  exit 2
fi
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
mkdir -p "$WORK"

cargo build --release --locked -p portcullis-demo
SERVER_BIN=$TARGET/release/portcullis-demo

SERVER=
SAMPLER=
STARTED_SECANTUS=
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  [ -n "$STARTED_SECANTUS" ] && scripts/secantus.sh stop || true
}
trap cleanup EXIT

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

FAILED=0
soak() { # store
  local store=$1 run log users out mongo_uri=
  run=$(date +%s)
  log=$WORK/server-$store.log
  users=$WORK/users-$store.txt
  out=$WORK/wrk-$store.txt
  local env=(PORTCULLIS_ADDR=127.0.0.1:$PORT
    PORTCULLIS_JWT_SECRET=soak-test-secret-soak-test-secret-12345
    PORTCULLIS_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=error NO_COLOR=1)
  if [ "$store" = mongo ]; then
    if [ -n "${SOAK_MONGODB_URI:-}" ]; then
      mongo_uri=$SOAK_MONGODB_URI
    else
      mongo_uri=$(scripts/secantus.sh start)
      STARTED_SECANTUS=1
    fi
    env+=(PORTCULLIS_MONGODB_URI="$mongo_uri" PORTCULLIS_MONGODB_DATABASE="soak_$run")
  fi
  echo "== $store store: $CONNECTIONS connections for $DURATION${mongo_uri:+ (MongoDB at $mongo_uri, database soak_$run)}"
  env -u PORTCULLIS_RATE_LIMITS -u PORTCULLIS_MONGODB_URI -u PORTCULLIS_MONGODB_DATABASE "${env[@]}" "$SERVER_BIN" >"$log" 2>&1 &
  SERVER=$!
  for _ in $(seq 150); do
    curl -sf "$URL/auth/providers" >/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { echo "the server exited; log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.2
  done
  curl -sf "$URL/auth/providers" >/dev/null || { echo "the server did not answer; log:" >&2; cat "$log" >&2; exit 1; }
  echo "server RSS at start: $(rss "$SERVER") kB"
  python3 scripts/load/soak_users.py "$URL" "$CONNECTIONS" "$run" >"$users"
  echo "server RSS after creating $CONNECTIONS signed-in users: $(rss "$SERVER") kB"

  local start=$SECONDS
  (
    while sleep 10; do
      echo "  RSS at +$((SECONDS - start))s: $(rss "$SERVER") kB"
    done
  ) &
  SAMPLER=$!
  RUN=$run USERS=$users wrk -t"$CONNECTIONS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s \
    -s scripts/load/soak.lua "$URL" >"$out"
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=
  echo "server RSS at end: $(rss "$SERVER") kB (peak $(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status") kB)"
  sed -n '/^requests:/,$p' "$out" | grep -v '^SOAK_UNEXPECTED='
  local unexpected errors
  unexpected=$(sed -n 's/^SOAK_UNEXPECTED=//p' "$out")
  errors=$(grep -c 'ERROR' "$log" || true)
  echo "ERROR lines in the server log: $errors"
  if [ "$errors" != 0 ]; then
    grep -m5 'ERROR' "$log"
  fi
  if [ -z "$unexpected" ] || [ "$unexpected" != 0 ] || [ "$errors" != 0 ]; then
    echo "FAILED on $store: unexpected answers or errors (wrk output: $out, server log: $log)"
    FAILED=1
  fi
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=
  if [ -n "$STARTED_SECANTUS" ]; then
    scripts/secantus.sh stop
    STARTED_SECANTUS=
  fi
}

for store in $STORES; do
  case $store in
    memory | mongo) soak "$store" ;;
    *) echo "unknown store $store (memory, mongo)" >&2; exit 2 ;;
  esac
done
exit $FAILED
