#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the store conformance suite on
# MemoryStore and MongoStore, every HTTP integration suite (tests/api,
# tests/oauth, tests/magic_link) on each store, two
# demo-server processes on one MongoDB (tests/multinode, which runs the
# example binary this `cargo test` builds), doc tests, and builds every
# example and bench; then, without arguments, the guide's checks
# (scripts/docs.sh), the generated TypeScript client's (scripts/client.sh)
# and the browser check (scripts/browser.sh).
#
# Installs and starts, from PyPI, SecantusDB (a MongoDB wire-compatible
# server), aiosmtpd (an SMTP server that keeps what it receives, for the
# SmtpSender test) and oidc-provider-mock (a real OpenID provider, for the
# OAuth tests) by itself, and stops them all at the end; and PyJWT, the
# independent verifier of our JWKS-published keys. With no arguments it
# also checks the guide (scripts/docs.sh), drives Swagger UI and the demo's
# cookie-only page in a real browser (scripts/browser.sh: Debian's chromium,
# installed with apt-get when missing, through playwright-core from npm;
# screenshots in target/browser/), and fuzzes the API against its spec
# (scripts/fuzz.sh: schemathesis and openapi-spec-validator, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/oidc.sh stop || true; scripts/smtp.sh stop || true; scripts/secantus.sh stop || true' EXIT
PORTCULLIS_TEST_MONGODB_URI=$(scripts/secantus.sh start)
export PORTCULLIS_TEST_MONGODB_URI
PORTCULLIS_TEST_SECANTUSD=$(scripts/secantus.sh bin)
export PORTCULLIS_TEST_SECANTUSD
SMTP_ENV=$(scripts/smtp.sh start)
while IFS='=' read -r key value; do
  case $key in
    PORTCULLIS_TEST_SMTP_URL | PORTCULLIS_TEST_SMTP_DIR) export "$key=$value" ;;
  esac
done <<<"$SMTP_ENV"
if [ -z "${PORTCULLIS_TEST_SMTP_URL:-}" ] || [ -z "${PORTCULLIS_TEST_SMTP_DIR:-}" ]; then
  echo "scripts/smtp.sh start printed no SMTP URL or mail directory: $SMTP_ENV" >&2
  exit 1
fi
PORTCULLIS_TEST_PYJWT=$(bash scripts/pyjwt.sh)
export PORTCULLIS_TEST_PYJWT
OIDC_ENV=$(scripts/oidc.sh start)
while IFS='=' read -r key value; do
  case $key in
    PORTCULLIS_TEST_OIDC_ISSUER) export "$key=$value" ;;
  esac
done <<<"$OIDC_ENV"
if [ -z "${PORTCULLIS_TEST_OIDC_ISSUER:-}" ]; then
  echo "scripts/oidc.sh start printed no issuer: $OIDC_ENV" >&2
  exit 1
fi
echo "== tests (HTTP tests on MemoryStore), MongoDB at $PORTCULLIS_TEST_MONGODB_URI," \
  "SMTP at $PORTCULLIS_TEST_SMTP_URL, OpenID provider at $PORTCULLIS_TEST_OIDC_ISSUER"
cargo test --workspace --all-features --locked "$@"
echo "== HTTP tests on MongoStore"
PORTCULLIS_TEST_STORE=mongo cargo test --all-features --locked --test api --test oauth --test magic_link "$@"
echo "== the guide: excerpts, links, coverage, snippets, and every curl example against the demo server"
if [ "$#" -eq 0 ]; then
  bash scripts/docs.sh
fi
echo "== the generated TypeScript client: types current with the spec, tsc, and its flow against the demo server"
if [ "$#" -eq 0 ]; then
  bash scripts/client.sh
fi
echo "== a real browser (chromium, playwright-core): Swagger UI's Authorize and Try it out, the demo's cookie-only page"
if [ "$#" -eq 0 ]; then
  bash scripts/browser.sh
fi
echo "== the spec fuzzed: openapi-spec-validator, then schemathesis against the demo server"
if [ "$#" -eq 0 ]; then
  bash scripts/fuzz.sh
fi
