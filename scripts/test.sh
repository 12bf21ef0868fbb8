#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (HTTP), doc tests, and builds
# every example and bench. Needs nothing but the Rust toolchain in this build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features --locked "$@"
