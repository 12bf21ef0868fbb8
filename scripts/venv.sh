#!/usr/bin/env bash
# Makes sure a Python venv holds exactly a pinned set of packages from PyPI,
# and prints its python. Shared by the scripts that install test servers
# and tools (smtp.sh, oidc.sh, secantus.sh, pyjwt.sh).
#
#   scripts/venv.sh VENV_DIR REQUIREMENT...   # e.g. aiosmtpd==1.4.6, or -r file
#
# The venv is reused while it was installed from the same requirements
# (compared with a copy kept in the venv); otherwise it is (re)installed.
# When `python3 -m venv` fails because Debian's python3-venv is missing, it
# is installed with apt-get. Progress goes to stderr.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: scripts/venv.sh VENV_DIR REQUIREMENT..." >&2
  exit 2
fi
VENV=$1
shift
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac

# The requirements as one text: arguments, with `-r file` expanded.
wanted() {
  while [ $# -gt 0 ]; do
    if [ "$1" = -r ]; then
      cat "$2"
      shift 2
    else
      echo "$1"
      shift
    fi
  done
}
WANTED=$(wanted "$@")

# One try: the venv without pip, then pip from ensurepip with its own output
# shown (`python3 -m venv` hides why ensurepip failed: CI once saw only "returned
# non-zero exit status 1"), and the free space where the venv goes.
try_venv() {
  rm -rf "$VENV"
  if python3 -m venv --without-pip "$VENV" >&2 &&
    "$VENV/bin/python" -m ensurepip --upgrade --default-pip >/dev/null 2>"$VENV.ensurepip.log"; then
    rm -f "$VENV.ensurepip.log"
    return 0
  fi
  echo "creating the venv $VENV failed; ensurepip said:" >&2
  tail -n 20 "$VENV.ensurepip.log" >&2 2>/dev/null || true
  df -h "$(dirname "$VENV")" >&2 || true
  rm -rf "$VENV" "$VENV.ensurepip.log"
  return 1
}

make_venv() {
  # Twice: a first failure can be transient (a full disk that a parallel
  # job's cleanup frees, a half-written wheel cache).
  if try_venv || { sleep 2 && try_venv; }; then
    return 0
  fi
  # Debian and Ubuntu ship venv's ensurepip in a separate package.
  if command -v apt-get >/dev/null 2>&1; then
    echo "python3 -m venv failed: installing python3-venv with apt-get" >&2
    local sudo=
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q python3-venv >&2 ||
      { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q python3-venv >&2; } || true
    if try_venv; then
      return 0
    fi
  fi
  echo "cannot create a Python venv in $VENV: install python3-venv and retry" >&2
  return 1
}

if ! [ -x "$VENV/bin/python" ] || ! [ -f "$VENV/installed.txt" ] ||
  [ "$(cat "$VENV/installed.txt")" != "$WANTED" ]; then
  echo "installing into $VENV: $(echo "$WANTED" | tr '\n' ' ')" >&2
  mkdir -p "$(dirname "$VENV")"
  if [ ! -x "$VENV/bin/pip" ]; then
    make_venv
  fi
  rm -f "$VENV/installed.txt"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  echo "$WANTED" >"$VENV/installed.txt"
fi
echo "$VENV/bin/python"
