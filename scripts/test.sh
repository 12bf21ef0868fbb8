#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the store conformance suite on
# MemoryStore and MongoStore, the HTTP integration tests on each store, doc
# tests, and builds every example and bench.
#
# Installs and starts SecantusDB (a MongoDB wire-compatible server, from
# PyPI) by itself, and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PORTCULLIS_TEST_MONGODB_URI=$(scripts/secantus.sh start)
export PORTCULLIS_TEST_MONGODB_URI
PORTCULLIS_TEST_SECANTUSD=$(scripts/secantus.sh bin)
export PORTCULLIS_TEST_SECANTUSD
trap 'scripts/secantus.sh stop' EXIT
echo "== tests (HTTP tests on MemoryStore), MongoDB at $PORTCULLIS_TEST_MONGODB_URI"
cargo test --workspace --all-features --locked "$@"
echo "== HTTP tests on MongoStore"
PORTCULLIS_TEST_STORE=mongo cargo test --all-features --locked --test api "$@"
