#!/usr/bin/env bash
# Checks the guide under docs/ against the code, so the docs cannot drift
# from the API (see docs/README.md, "How the examples are checked"):
#
# 1. every ```rust,ignore block is an excerpt of a compiled file and still
#    matches it (`docs_check.py excerpts`);
# 2. every relative link and #anchor resolves (`docs_check.py links`), and
#    every event, action, email message, error code and conformance check
#    of the code is named in the guide (`docs_check.py coverage`), and
#    every threat table names tests that exist (`docs_check.py threats`),
#    and every route, PORTCULLIS_* variable, collection, crate, example,
#    Rust path and event the README and the guide name exists in the code,
#    and every served route, read variable and collection is in the README
#    (`docs_check.py claims`);
# 3. every other ```rust block compiles, as an example of a scratch crate
#    in target/docs/snippets that depends on this workspace
#    (`docs_check.py snippets`, then `cargo build --examples`);
# 4. every curl example of docs/flows/*.md runs, in page order, against the
#    demo server, and its answer (status, shown headers, JSON shape) must
#    be the one the page shows (`docs_check.py http`). Each page gets a
#    fresh server (in-memory store, on a free port), so pages are
#    independent; mail goes to a real SMTP server (aiosmtpd, through
#    scripts/smtp.sh, in its own directory target/docs/smtp) where the
#    runner reads the links and codes the pages use. When a page uses
#    $OIDC_ISSUER (the OAuth page), a real OpenID provider
#    (oidc-provider-mock, through scripts/oidc.sh, in target/docs/oidc) is
#    started too, and the page's server is configured with it.
#
#   scripts/docs.sh                 # everything
#   scripts/docs.sh docs/flows/x.md # only the HTTP examples of these pages
#   DOCS_VERBOSE=1 scripts/docs.sh  # print every example as it passes
#
# Exits non-zero on any mismatch. Server logs: target/docs/logs/<page>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
WORK=$TARGET/docs
PY=${PYTHON:-python3}

# The flow pages, in the order of docs/README.md. Every page of docs/flows
# must be listed (a new page is never skipped silently).
ORDER=(
  registration-and-sign-in
  tokens-and-refresh
  cookie-sessions
  logout-and-sessions
  email-verification
  password-reset
  change-password-and-email
  delete-account
  totp-and-recovery-codes
  passkeys
  set-password
  admin-users
  roles
  organizations
  magic-link
  email-code
  oauth
)
ALL_PAGES=()
for name in "${ORDER[@]}"; do
  [ -f "docs/flows/$name.md" ] || { echo "docs.sh: docs/flows/$name.md is listed in ORDER but missing" >&2; exit 1; }
  ALL_PAGES+=("docs/flows/$name.md")
done
for file in docs/flows/*.md; do
  case " ${ORDER[*]} " in
    *" $(basename "$file" .md) "*) ;;
    *) echo "docs.sh: $file is not in ORDER (scripts/docs.sh): add it" >&2; exit 1 ;;
  esac
done

PAGES=("$@")
if [ ${#PAGES[@]} -eq 0 ]; then
  PAGES=("${ALL_PAGES[@]}")
fi
DOCS=(docs/*.md docs/*/*.md)

export SMTP_SINK_DIR=$WORK/smtp
export OIDC_DIR=$WORK/oidc
cleanup() {
  scripts/smtp.sh stop >/dev/null 2>&1 || true
  scripts/oidc.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ $# -eq 0 ]; then
  echo "== Rust excerpts"
  "$PY" scripts/docs_check.py excerpts "${DOCS[@]}"
  echo "== links"
  "$PY" scripts/docs_check.py links "${DOCS[@]}"
  echo "== events, actions, messages and error codes named in the guide"
  "$PY" scripts/docs_check.py coverage
  echo "== what the README and the guide name exists: routes, variables, collections, crates, Rust paths, events"
  "$PY" scripts/docs_check.py claims
  echo "== threat tables name tests that exist"
  "$PY" scripts/docs_check.py threats docs/flows/*.md
  echo "== Rust snippets (compiled as examples of $WORK/snippets)"
  "$PY" scripts/docs_check.py snippets --out "$WORK/snippets" "${DOCS[@]}"
  CARGO_TARGET_DIR=$TARGET cargo build --quiet --examples --manifest-path "$WORK/snippets/Cargo.toml"
  echo "snippets: compiled"
fi

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

# The OpenID provider, only when a page signs in with it.
OIDC=()
if grep -q 'OIDC_ISSUER' "${PAGES[@]}"; then
  OIDC_ENV=$(scripts/oidc.sh start)
  ISSUER=
  while IFS='=' read -r key value; do
    case $key in PORTCULLIS_TEST_OIDC_ISSUER) ISSUER=$value ;; esac
  done <<<"$OIDC_ENV"
  if [ -z "$ISSUER" ]; then
    echo "scripts/oidc.sh start printed no issuer: $OIDC_ENV" >&2
    exit 1
  fi
  OIDC=(--oidc-issuer "$ISSUER")
  echo "== OpenID provider at $ISSUER"
fi

echo "== HTTP examples (a fresh demo server per page; SMTP at $SMTP_URL)"
VERBOSE=()
if [ -n "${DOCS_VERBOSE:-}" ]; then VERBOSE=(-v); fi
# A page's own server settings (e.g. PORTCULLIS_COOKIES=1) are in its
# <!-- server … --> comment.
"$PY" scripts/docs_check.py http "${VERBOSE[@]}" \
  --server "$SERVER" --smtp-url "$SMTP_URL" --mail-dir "$MAIL_DIR" --log-dir "$WORK/logs" "${OIDC[@]}" \
  "${PAGES[@]}"
