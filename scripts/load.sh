#!/usr/bin/env bash
# Load test of the demo server with wrk: GET /auth/me (against a plain Poem
# handler returning the same JSON, in the same run), login, register and
# refresh, at 2 and 16 connections. Prints requests/s and latencies.
#
#   scripts/load.sh            # 10 s per run
#   DURATION=30s scripts/load.sh
#
# Needs wrk (installed with apt-get when missing). Rate limits are turned
# off (PORTCULLIS_RATE_LIMITS=off): these runs measure throughput from one
# client IP; scripts/soak.sh keeps them on. With PORTCULLIS_MONGODB_URI set,
# the server runs on MongoStore.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PORT=${PORT:-18000}
BASE_PORT=$((PORT + 1))
URL="http://127.0.0.1:$PORT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release --locked -p portcullis-demo
cargo build --release --locked --example baseline
PORTCULLIS_ADDR=127.0.0.1:$PORT PORTCULLIS_JWT_SECRET=load-test-secret-load-test-secret-1234 PORTCULLIS_RATE_LIMITS=off \
  RUST_LOG=warn target/release/portcullis-demo &
SERVER=$!
PORTCULLIS_ADDR=127.0.0.1:$BASE_PORT target/release/examples/baseline &
BASELINE=$!
trap 'kill $SERVER $BASELINE 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$URL/auth/providers" >/dev/null && break; sleep 0.2; done

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$SERVER/status"; }
echo "server RSS at start: $(rss)"

curl -sf -XPOST "$URL/auth/register" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"Zq8#vT2!mW-horse"}' >/dev/null
login() {
  curl -sf -XPOST "$URL/auth/login" -H 'content-type: application/json' \
    -d '{"email":"load@example.com","password":"Zq8#vT2!mW-horse"}'
}
TOKEN=$(login | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
export TOKEN

run() { # name connections threads url script
  echo "== $1, $2 connections"
  wrk -t"$3" -c"$2" -d"$DURATION" --latency -s "$5" "$4" |
    grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|99)%|Latency  '
}

# Baseline and /auth/me alternate, twice, so both see the same machine state.
for c in 2 16; do
  t=$(( c < 2 ? c : 2 ))
  for _ in 1 2; do
    run "baseline GET /auth/me (plain Poem)" $c $t "http://127.0.0.1:$BASE_PORT/auth/me" scripts/load/me.lua
    run "GET /auth/me" $c $t "$URL/auth/me" scripts/load/me.lua
  done
done
for c in 2 16; do
  t=$(( c < 2 ? c : 2 ))
  run "POST /auth/login" $c $t "$URL/auth/login" scripts/load/login.lua
  RUN=$c run "POST /auth/register" $c $t "$URL/auth/register" scripts/load/register.lua
  TOKENS=$(mktemp)
  for _ in $(seq $c); do
    login | python3 -c 'import sys,json; print(json.load(sys.stdin)["refresh_token"])' >>"$TOKENS"
  done
  TOKENS=$TOKENS run "POST /auth/refresh (chained)" $c $c "$URL/auth/refresh" scripts/load/refresh.lua
  rm -f "$TOKENS"
done
echo "server RSS at end: $(rss)"
