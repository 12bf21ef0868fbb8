#!/usr/bin/env bash
# Builds and tests scripts/scratch, a small app that depends on the workspace
# crates by path, with a FRESH resolve: no lock file, the newest compatible
# version of every dependency, as a new user's `cargo add` gets. The
# workspace itself builds --locked; this is the build that sees an upstream
# release (a new field in a foreign struct, a changed trait) before our users
# do. Its target directory is target/scratch (kept between runs). First it
# checks that the scratch app's [dependencies] are the ones
# docs/getting-started.md tells a new user to write, so this build proves
# that page's Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
echo "== scratch app: the same dependencies as docs/getting-started.md"
python3 scripts/docs_check.py same-dependencies docs/getting-started.md
WORK=$ROOT/target/scratch
mkdir -p "$WORK/app"
rm -rf "$WORK/app/src" "$WORK/app/tests" "$WORK/app/Cargo.lock"
cp -r scripts/scratch/src scripts/scratch/tests "$WORK/app/"
sed "s|@ROOT@|$ROOT|g" scripts/scratch/Cargo.toml >"$WORK/app/Cargo.toml"
cd "$WORK/app"
echo "== scratch app: fresh resolve (no lock file)"
cargo generate-lockfile
for crate in email_address jsonwebtoken poem poem-openapi mongodb lettre oauth2; do
  version=$(cargo pkgid "$crate" 2>/dev/null | sed 's/.*[@#]//') || true
  [ -n "$version" ] && echo "  $crate $version"
done
echo "== scratch app: build and test"
CARGO_TARGET_DIR=$WORK/target cargo test --quiet
