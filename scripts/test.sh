#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the store conformance suite on
# MemoryStore and MongoStore, the HTTP integration tests on each store, doc
# tests, and builds every example and bench.
#
# Installs and starts, from PyPI, SecantusDB (a MongoDB wire-compatible
# server) and aiosmtpd (an SMTP server that keeps what it receives, for the
# SmtpSender test) by itself, and stops both at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/smtp.sh stop || true; scripts/secantus.sh stop || true' EXIT
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
echo "== tests (HTTP tests on MemoryStore), MongoDB at $PORTCULLIS_TEST_MONGODB_URI," \
  "SMTP at $PORTCULLIS_TEST_SMTP_URL"
cargo test --workspace --all-features --locked "$@"
echo "== HTTP tests on MongoStore"
PORTCULLIS_TEST_STORE=mongo cargo test --all-features --locked --test api "$@"
