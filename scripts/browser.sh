#!/usr/bin/env bash
# Checks the demo server in a real browser: Debian's chromium, headless,
# driven by playwright-core (npm, pinned in scripts/browser/package-lock.json;
# it downloads no browser):
#
# 1. installs chromium with apt-get when it is missing, and the npm
#    packages of scripts/browser (`npm ci`);
# 2. starts three demo servers (in-memory store, each on a free port): one
#    with the default bearer transport, one in cookie-only mode
#    (PORTCULLIS_COOKIE_ONLY=1, so no token in any response body);
# 3. runs scripts/browser/check.mjs: in Swagger UI (/docs) it registers a
#    user, clicks Authorize, signs in with the OAuth2 password flow, and
#    calls GET /auth/me through "Try it out" / "Execute" (200, the user's
#    email); on the cookie-only server's /demo page it signs in through the
#    page's form, sees the email GET /auth/me answers, and checks that the
#    login answer held no token and that document.cookie cannot read the
#    HttpOnly token cookies; on a third server (cookie-only, served as
#    http://localhost), the /demo page adds a passkey of a CDP virtual
#    authenticator and signs in with it alone (check.mjs, 3.);
# 4. stops the servers.
#
#   scripts/browser.sh
#
# Screenshots (CI artifacts): target/browser/*.png (swagger-me.png,
# cookie-page.png, …; *-failure.png when a check fails), printed at the end.
# Server logs: target/browser/{swagger,cookie}-server.log. Needs Node.js
# 18+ with npm (installed with apt-get when missing). CHROMIUM overrides
# the browser binary (default: chromium on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

# How the demo server is started (built first when needed); the one line
# to change when the demo moves.
DEMO=(cargo run --quiet --locked -p portcullis-demo --)

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
WORK=$TARGET/browser
mkdir -p "$WORK"
rm -f "$WORK"/*.png

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT

sudo=
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "$@" >&2 ||
    { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q "$@" >&2; }
}

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'
}
if ! node_ok; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "Node.js 18+ with npm is missing: installing nodejs and npm with apt-get" >&2
    apt_install nodejs npm
  fi
  node_ok || { echo "browser.sh needs Node.js 18+ with npm" >&2; exit 1; }
fi

CHROMIUM=${CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 ||
      { echo "browser.sh needs chromium (no apt-get here to install it)" >&2; exit 1; }
    echo "chromium is missing: installing it with apt-get" >&2
    apt_install chromium
  fi
  CHROMIUM=$(command -v chromium) ||
    { echo "browser.sh: chromium is still not on PATH after apt-get install" >&2; exit 1; }
fi

echo "== npm ci (scripts/browser: playwright-core, no browser download)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd scripts/browser && npm ci --no-audit --no-fund --loglevel=error)

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
secret() {
  node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))'
}

# start NAME PORT [VAR=value …]: a demo server on 127.0.0.1:PORT, its
# public URL (emailed links, the CSRF origin) the origin the browser uses.
start() {
  local name=$1 port=$2
  shift 2
  env PORTCULLIS_ADDR="127.0.0.1:$port" \
    PORTCULLIS_PUBLIC_URL="http://127.0.0.1:$port" \
    PORTCULLIS_JWT_SECRET="$(secret)" \
    RUST_LOG=info,poem=warn \
    "$@" "${DEMO[@]}" </dev/null >"$WORK/$name-server.log" 2>&1 &
  PIDS+=($!)
}

# wait_ready NAME PORT PID: until GET /auth/providers answers (the first
# start may build the demo first: as long as the process lives).
wait_ready() {
  local name=$1 port=$2 pid=$3
  until node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "http://127.0.0.1:$port/auth/providers" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the $name demo server exited; log ($WORK/$name-server.log):" >&2
      cat "$WORK/$name-server.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

echo "== demo servers (${DEMO[*]})"
SWAGGER_PORT=$(free_port)
start swagger "$SWAGGER_PORT"
wait_ready swagger "$SWAGGER_PORT" "${PIDS[0]}"
COOKIE_PORT=$(free_port)
start cookie "$COOKIE_PORT" PORTCULLIS_COOKIE_ONLY=1
wait_ready cookie "$COOKIE_PORT" "${PIDS[1]}"
PASSKEY_PORT=$(free_port)
# Served as http://localhost (WebAuthn binds passkeys to a domain, never an
# IP address): the demo then binds its passkeys to `localhost`.
# A passkey needs a verified address: its user is the superuser the
# server makes at start (verified).
PASSKEY_EMAIL=passkey-owner@example.com
PASSKEY_PASSWORD=$(secret)
start passkey "$PASSKEY_PORT" PORTCULLIS_PUBLIC_URL="http://localhost:$PASSKEY_PORT" PORTCULLIS_COOKIE_ONLY=1 \
  PORTCULLIS_SUPERUSER_EMAIL="$PASSKEY_EMAIL" PORTCULLIS_SUPERUSER_PASSWORD="$PASSKEY_PASSWORD"
wait_ready passkey "$PASSKEY_PORT" "${PIDS[2]}"
echo "bearer transport at http://127.0.0.1:$SWAGGER_PORT, cookie-only at http://127.0.0.1:$COOKIE_PORT, passkeys at http://localhost:$PASSKEY_PORT"

echo "== the browser ($CHROMIUM)"
if ! (cd scripts/browser &&
  SWAGGER_URL=http://127.0.0.1:$SWAGGER_PORT COOKIE_URL=http://127.0.0.1:$COOKIE_PORT \
    PASSKEY_URL=http://localhost:$PASSKEY_PORT PASSKEY_EMAIL=$PASSKEY_EMAIL PASSKEY_PASSWORD=$PASSKEY_PASSWORD \
    OUT_DIR=$WORK CHROMIUM=$CHROMIUM node check.mjs); then
  for name in swagger cookie passkey; do
    echo "the $name server's log ($WORK/$name-server.log) ends with:" >&2
    tail -n 20 "$WORK/$name-server.log" >&2
  done
  exit 1
fi
