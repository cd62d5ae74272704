#!/usr/bin/env bash
# Installs the real Dynamo the suite's real-Dynamo tests run (ai-dynamo
# 1.6.1 from PyPI) into a virtualenv outside the repo, once: later runs find
# it and do nothing. Prints the venv's python on stdout (everything else
# goes to stderr), so that
#   export DYNAMO_PYTHON=$(bash scripts/install-dynamo.sh)
# points the harness at it. About 620 MB; the first install takes about a
# minute with a fast link to PyPI (BENCHMARKS.md has the measured figure).
#
# DYNAMO_VENV overrides where the venv goes
# (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dynamo-test/dynamo-1.6.1).
# Every package is pinned by scripts/dynamo-constraints.txt (pip freeze of
# the tested venv).
set -euo pipefail

version=1.6.1
here=$(cd "$(dirname "$0")" && pwd)
constraints="$here/dynamo-constraints.txt"
venv=${DYNAMO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamo-test/dynamo-$version}
stamp="$venv/.dynamo-test-installed"
say() { echo "install-dynamo: $*" >&2; }
# The recipe: a venv made by another version of this script (or of the
# pinned versions) is made again.
recipe=$(cat "$0" "$constraints" | sha256sum | cut -d' ' -f1)

installed() { [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$recipe" ]; }
if installed; then
  echo "$venv/bin/python"
  exit 0
fi

# One install at a time (two test runs starting together).
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if installed; then
  echo "$venv/bin/python"
  exit 0
fi
# Only a venv of ours (or nothing) is replaced: DYNAMO_VENV may name any
# directory.
if [ -e "$venv" ] && [ -n "$(ls -A "$venv")" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
  say "$venv exists and is not a virtualenv: not replacing it (set DYNAMO_VENV elsewhere)"
  exit 1
fi

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "python3 with venv and ensurepip is needed (and no apt-get here): install them"
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing python3-venv"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi

started=$(date +%s)
say "installing ai-dynamo $version into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
pip() { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints" "$@" >&2; }
pip "ai-dynamo-runtime==$version"
# --no-deps: ai-dynamo's dependency `aisimulate` is a stub that tries to
# download at install time and fails offline; the frontend and the mocker
# need only these of the rest (design.md, "Real Dynamo").
pip --no-deps "ai-dynamo==$version"
say "(pip's complaint above about aisimulate and kubernetes is expected: neither is needed)"
pip aiohttp certifi msgspec prometheus-client pyzmq redis tqdm transformers \
  typing-extensions zstandard
# Proof it runs, before it is marked as installed.
"$venv/bin/python" -c 'import dynamo.frontend, dynamo.mocker' >&2
echo "$recipe" >"$stamp"
say "installed in $(( $(date +%s) - started )) s, $(du -sm "$venv" | cut -f1) MB"
echo "$venv/bin/python"
