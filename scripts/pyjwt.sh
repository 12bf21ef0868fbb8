#!/usr/bin/env bash
# Installs (once) PyJWT with its crypto extra from PyPI (pinned in
# scripts/pyjwt/requirements.txt) and prints the python that has it, for
# the test that verifies our access tokens from the JWKS with an
# independent implementation (tests/api/jwks.rs, scripts/pyjwt/verify.py).
#
#   export PORTCULLIS_TEST_PYJWT=$(scripts/pyjwt.sh)
#
# The venv lives in $PYJWT_DIR (default target/pyjwt).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${PYJWT_DIR:-target/pyjwt}
bash scripts/venv.sh "$DIR/venv" -r scripts/pyjwt/requirements.txt
