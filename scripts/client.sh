#!/usr/bin/env bash
# Checks the TypeScript client of openapi/clients/typescript end to end:
#
# 1. installs its pinned npm packages (`npm ci`, from package-lock.json);
# 2. regenerates the types from openapi/openapi.json with openapi-typescript
#    and fails when they differ from the committed src/schema.d.ts (so the
#    client cannot drift from the spec: run `npm run generate` there), and
#    checks that the ts excerpts of its README and of the flow pages
#    (docs/flows/*.md, their TypeScript sections) are lines of its code;
# 3. type-checks everything with tsc (strict), then compiles it to build/;
# 4. builds and starts the demo server (in-memory store, on a free port)
#    with its mail going to a real SMTP server (aiosmtpd, scripts/smtp.sh,
#    in its own directory target/client/smtp), and runs the scripted flow
#    (src/flow.ts) through the client: register, verify, login, me,
#    refresh, refresh-on-401, change password, forgot / reset through the
#    mailed link, magic link, set password, TOTP enrolment and an MFA
#    sign-in, an organization round trip (create, invite by mail, accept,
#    members, switch the active org and read its claims, leave, delete),
#    logout, and the documented
#    error bodies along the way; every answer is also checked against the
#    spec (documented status, content type, body valid against its schema);
# 5. stops the server and the SMTP server.
#
#   scripts/client.sh
#
# Needs Node.js 18+ with npm (installed with apt-get when missing) and
# python3 with venv (for the SMTP server). Exits non-zero on any failure.
# Server log: target/client/server.log (CLIENT_WORK_DIR moves target/client).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
WORK=${CLIENT_WORK_DIR:-$TARGET/client}
CLIENT=$PWD/openapi/clients/typescript
mkdir -p "$WORK"

# Its own SMTP server, apart from the one scripts/test.sh runs meanwhile.
export SMTP_SINK_DIR=$WORK/smtp
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # Ctrl-C: the server finishes in-flight requests and queued mail.
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  scripts/smtp.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'
}
if ! node_ok; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "Node.js 18+ with npm is missing: installing nodejs and npm with apt-get" >&2
    sudo=
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q nodejs npm >&2 ||
      { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q nodejs npm >&2; }
  fi
  node_ok || { echo "client.sh needs Node.js 18+ with npm" >&2; exit 1; }
fi

echo "== TypeScript client: npm ci (node $(node --version), npm $(npm --version 2>/dev/null))"
(cd "$CLIENT" && npm ci --no-audit --no-fund --loglevel=error)

echo "== generated types (src/schema.d.ts) match openapi/openapi.json"
if ! (cd "$CLIENT" && npm run --silent check-generated); then
  echo "src/schema.d.ts is not what openapi-typescript generates from openapi/openapi.json:" \
    "run \`npm run generate\` in openapi/clients/typescript and commit it" >&2
  exit 1
fi

echo "== the TypeScript excerpts of the README and docs/flows/*.md are in the code"
(cd "$CLIENT" && npm run --silent check-excerpts)

echo "== tsc --noEmit (strict), then build"
(cd "$CLIENT" && npm run --silent typecheck && rm -rf build && npm run --silent build)

echo "== demo server"
cargo build --quiet --locked -p portcullis-demo
SERVER=$TARGET/debug/portcullis-demo

SMTP_ENV=$(scripts/smtp.sh start)
SMTP_URL= MAIL_DIR=
while IFS='=' read -r key value; do
  case $key in
    PORTCULLIS_TEST_SMTP_URL) SMTP_URL=$value ;;
    PORTCULLIS_TEST_SMTP_DIR) MAIL_DIR=$value ;;
  esac
done <<<"$SMTP_ENV"
if [ -z "$SMTP_URL" ] || [ -z "$MAIL_DIR" ]; then
  echo "scripts/smtp.sh start printed no SMTP URL or mail directory: $SMTP_ENV" >&2
  exit 1
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
LOG=$WORK/server.log
PORTCULLIS_ADDR=127.0.0.1:$PORT \
  PORTCULLIS_SMTP_URL=$SMTP_URL \
  PORTCULLIS_JWT_SECRET=$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))') \
  RUST_LOG=info,poem=warn \
  "$SERVER" </dev/null >"$LOG" 2>&1 &
SERVER_PID=$!
ready=
for _ in $(seq 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the demo server exited; log ($LOG):" >&2
    cat "$LOG" >&2
    exit 1
  fi
  if node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "$BASE/auth/providers" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "the demo server did not answer on $BASE within 30 s; log ($LOG):" >&2
  cat "$LOG" >&2
  exit 1
fi

echo "== the flow through the generated client (demo server at $BASE, SMTP at $SMTP_URL)"
if ! (cd "$CLIENT" && PORTCULLIS_URL=$BASE PORTCULLIS_TEST_SMTP_DIR=$MAIL_DIR node build/flow.js); then
  echo "the flow failed; the server's log ($LOG) ends with:" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
