#!/usr/bin/env bash
# Load test of the demo server with wrk: GET /auth/me (against a plain Poem
# handler returning the same JSON, in the same run), login, register and
# refresh, at 2 and 16 connections, and isolation: GET /auth/me on 16
# connections while 16 others hammer /auth/login (Argon2id must never
# starve the runtime). Ends with one table: each path, requests/s, p50/p99,
# the ratio to the plain handler where one applies, and the isolation
# figure (me's throughput under the login storm over its idle throughput).
# Each run also records the server's CPU time per request (user + system,
# from /proc): on a shared 2-core machine that ratio to the plain handler
# moves far less between runs than req/s does.
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

OUT=$(mktemp -d)
RUNS=$OUT/runs.tsv # name, connections, wrk output file
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system ticks
run() { # name connections threads url script [server pid]
  local file pid=${6:-$SERVER} before
  file=$OUT/$(wc -l <"$RUNS" 2>/dev/null || echo 0).txt
  echo "== $1, $2 connections"
  before=$(cpu "$pid")
  wrk -t"$3" -c"$2" -d"$DURATION" --latency -s "$5" "$4" >"$file"
  # The server's CPU time over the run: per request it is steadier than
  # req/s on a shared machine (wrk and neighbours take the other core).
  echo "server CPU ticks: $(( $(cpu "$pid") - before ))" >>"$file"
  grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|99)%|Latency  ' "$file"
  printf '%s\t%s\t%s\n' "$1" "$2" "$file" >>"$RUNS"
}
touch "$RUNS"

# Baseline and /auth/me alternate, twice, so both see the same machine state.
for c in 2 16; do
  t=$(( c < 2 ? c : 2 ))
  for _ in 1 2; do
    run "baseline GET /auth/me (plain Poem)" $c $t "http://127.0.0.1:$BASE_PORT/auth/me" scripts/load/me.lua "$BASELINE"
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

# Isolation: /auth/me on 16 connections during a login storm on 16 others
# (the storm starts first and ends last, so it covers the whole run).
secs=${DURATION%s}
wrk -t1 -c16 -d"$((secs + 4))s" -s scripts/load/login.lua "$URL/auth/login" >"$OUT/storm.txt" &
STORM=$!
sleep 2
run "GET /auth/me during a login storm" 16 1 "$URL/auth/me" scripts/load/me.lua
wait $STORM
echo "== (the storm) POST /auth/login, 16 connections"
grep -E 'Requests/sec|Non-2xx' "$OUT/storm.txt"
printf '%s\t%s\t%s\n' "POST /auth/login (the storm)" 16 "$OUT/storm.txt" >>"$RUNS"
echo "server RSS at end: $(rss)"

python3 - "$RUNS" "$(getconf CLK_TCK)" <<'PY'
import re, statistics, sys

TICK = 1 / int(sys.argv[2])

def seconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

runs = {}
for line in open(sys.argv[1]):
    name, conns, path = line.rstrip("\n").split("\t")
    out = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    ticks = re.search(r"server CPU ticks: (\d+)", out)
    runs.setdefault((name, int(conns)), []).append(
        (rps, seconds(pct["50"]) if "50" in pct else None,
         seconds(pct["99"]) if "99" in pct else None,
         int(errors.group(1)) if errors else 0,
         int(ticks.group(1)) * TICK / total * 1e6 if ticks and total else None))

def median(key, i):
    values = [r[i] for r in runs.get(key, []) if r[i] is not None]
    return statistics.median(values) if values else None

ms = lambda v: "-" if v is None else f"{v * 1e3:.2f}"
print()
print(f"{'path':<40} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>8} {'CPU us':>8} {'cpu ratio':>9} {'non-2xx':>8}")
for key in runs:
    name, conns = key
    rps = median(key, 0)
    cpu = median(key, 4)
    ratio = cpu_ratio = ""
    if name == "GET /auth/me":
        base = median(("baseline GET /auth/me (plain Poem)", conns), 0)
        ratio = f"{rps / base:.2f}" if base else ""
        base_cpu = median(("baseline GET /auth/me (plain Poem)", conns), 4)
        cpu_ratio = f"{base_cpu / cpu:.2f}" if base_cpu and cpu else ""
    cpu_text = "-" if cpu is None else f"{cpu:.1f}"
    print(f"{name:<40} {conns:>5} {rps:>10.0f} {ms(median(key, 1)):>8} {ms(median(key, 2)):>8} {ratio:>8} {cpu_text:>8} {cpu_ratio:>9} {sum(r[3] for r in runs[key]):>8}")
print("(ratio: req/s over the plain handler's; CPU us: the server's CPU time per request;"
      " cpu ratio: the plain handler's CPU per request over ours)")
idle = median(("GET /auth/me", 16), 0)
storm = median(("GET /auth/me during a login storm", 16), 0)
p99 = median(("GET /auth/me during a login storm", 16), 2)
if idle and storm:
    print(f"\nisolation: GET /auth/me keeps {storm / idle:.2f} of its idle throughput "
          f"({storm:.0f} of {idle:.0f} req/s) with p99 {ms(p99)} ms while 16 connections sign in "
          "(target: >= 0.5, p99 < 10 ms)")
ratios = [rps / b for (rps, *_), (b, *_) in zip(runs.get(("GET /auth/me", 16), []),
          runs.get(("baseline GET /auth/me (plain Poem)", 16), []))]
if ratios:
    print("GET /auth/me over the plain handler, 16 connections, per alternating pair: "
          + ", ".join(f"{r:.2f}" for r in ratios))
PY
rm -rf "$OUT"
