#!/usr/bin/env bash
# Fuzzes the HTTP API against its own spec:
#
# 1. validates the committed openapi/openapi.json with openapi-spec-validator;
# 2. builds and starts the demo server (in-memory store, rate limits off,
#    EdDSA access tokens so /.well-known/jwks.json answers a key, a superuser
#    from PORTCULLIS_SUPERUSER_EMAIL/PASSWORD) on a free port and
#    validates the spec it serves at /openapi.json too;
# 3. runs schemathesis against that spec: every operation, every check
#    (`--checks all`), all phases (examples, coverage, fuzzing, stateful),
#    FUZZ_MAX_EXAMPLES (100) test cases per operation and phase. Every request
#    carries a valid superuser token (scripts/fuzz_hooks.py signs in again
#    when a fuzzed logout or session revocation ended the previous one), so
#    the authenticated and admin operations are reached; schemathesis's
#    ignored_auth check still sends them without or with a broken token.
#    scripts/fuzz.toml says which schema-valid requests the server may still
#    refuse by a rule OpenAPI cannot state (an unknown one-time token, a
#    wrong confirmation password, ...), and the hooks' custom check holds
#    those answers to the error codes of exactly these rules;
# 4. summarizes the recorded requests (scripts/fuzz_report.py: per operation
#    and status, per check) and fails on any 5xx, any failed check, or fewer
#    than FUZZ_MIN_REQUESTS (2000) requests in total.
#
# Installs schemathesis and openapi-spec-validator (pinned below) from PyPI
# into a venv of its own on first use (scripts/venv.sh): $FUZZ_VENV, default
# <cargo target dir>/fuzz/venv; the full installed set is written to
# $FUZZ_DIR/pip-freeze.txt. Everything else (server log, reports, the
# NDJSON event stream) goes to $FUZZ_DIR, default <cargo target dir>/fuzz.
#
#   scripts/fuzz.sh
#   FUZZ_MAX_EXAMPLES=20 scripts/fuzz.sh   # quicker
#   FUZZ_SEED=123 scripts/fuzz.sh          # another seed (default: fixed)
#
# Exits non-zero on any failure; schemathesis prints each with a curl
# command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
DIR=${FUZZ_DIR:-$TARGET/fuzz}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
VENV=${FUZZ_VENV:-$DIR/venv}
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac
SCHEMATHESIS_VERSION=4.32.5
SPEC_VALIDATOR_VERSION=0.9.0
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-100}
MIN_REQUESTS=${FUZZ_MIN_REQUESTS:-2000}
SEED=${FUZZ_SEED:-20261122}
WORKERS=${FUZZ_WORKERS:-2}
EMAIL=fuzz-admin@example.com
PASSWORD=fuzz-Admin-passphrase-$RANDOM$RANDOM
START=$(date +%s)

mkdir -p "$DIR"
# The pinned pair, in a venv kept between runs (scripts/venv.sh).
bash scripts/venv.sh "$VENV" \
  "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$SPEC_VALIDATOR_VERSION" >/dev/null
"$VENV/bin/pip" freeze --disable-pip-version-check >"$DIR/pip-freeze.txt"

echo "== openapi-spec-validator $SPEC_VALIDATOR_VERSION: the committed spec"
"$VENV/bin/openapi-spec-validator" openapi/openapi.json

echo "== demo server"
cargo build --quiet --locked -p portcullis-demo
# A copy, so a build running alongside (a shared target dir) cannot swap the
# binary under the run.
cp "$TARGET/debug/portcullis-demo" "$DIR/server"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT
PORTCULLIS_ADDR=127.0.0.1:$PORT \
  PORTCULLIS_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') \
  PORTCULLIS_SUPERUSER_EMAIL=$EMAIL PORTCULLIS_SUPERUSER_PASSWORD=$PASSWORD \
  PORTCULLIS_JWT_ALGORITHM=EdDSA PORTCULLIS_RATE_LIMITS=off \
  PORTCULLIS_PASSKEY_RP_ID=localhost PORTCULLIS_PASSKEY_ORIGINS=http://localhost:$PORT \
  "$DIR/server" >"$DIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS -o "$DIR/served-openapi.json" "$BASE/openapi.json" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz.sh: the demo server exited; its log:" >&2
    cat "$DIR/server.log" >&2
    exit 1
  fi
  sleep 0.2
done
[ -s "$DIR/served-openapi.json" ] || { echo "fuzz.sh: no /openapi.json from $BASE" >&2; exit 1; }
echo "demo server at $BASE (log: $DIR/server.log)"

echo "== openapi-spec-validator: the served spec"
"$VENV/bin/openapi-spec-validator" "$DIR/served-openapi.json"

echo "== schemathesis $SCHEMATHESIS_VERSION: all operations, all checks, $MAX_EXAMPLES examples per operation, seed $SEED"
rm -rf "$DIR/report"
STATUS=0
(
  cd "$DIR"
  FUZZ_BASE_URL=$BASE FUZZ_EMAIL=$EMAIL FUZZ_PASSWORD=$PASSWORD FUZZ_AUTH_STATS=$DIR/auth-stats.json \
    PYTHONPATH=$ROOT/scripts SCHEMATHESIS_HOOKS=fuzz_hooks \
    "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/fuzz.toml" run "$BASE/openapi.json" \
    --checks all --workers "$WORKERS" --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
    --generation-database none --no-color \
    --report ndjson,junit --report-dir "$DIR/report" \
    --report-ndjson-path "$DIR/report/events.ndjson" --report-junit-path "$DIR/report/junit.xml"
) || STATUS=$?

echo "== requests and checks"
python3 scripts/fuzz_report.py "$DIR/report/events.ndjson" --spec "$DIR/served-openapi.json" \
  --min-requests "$MIN_REQUESTS" --auth-stats "$DIR/auth-stats.json" || STATUS=1
if grep -q "panicked" "$DIR/server.log"; then
  echo "fuzz.sh: the server panicked (see $DIR/server.log)" >&2
  STATUS=1
fi
echo "fuzz.sh: $(($(date +%s) - START)) s; reports in $DIR/report"
if [ "$STATUS" != 0 ]; then
  echo "fuzz.sh: FAILED" >&2
  exit "$STATUS"
fi
echo "fuzz.sh: passed"
