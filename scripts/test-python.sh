#!/usr/bin/env bash
# The pytest side: builds the Python package (python/, PyO3 + maturin) as a
# wheel, installs it into a virtualenv outside the repo with pytest and
# pytest-xdist, checks its type hints, and runs its tests under
# `pytest -n 4`. Then checks that the one abi3 wheel imports on the newest
# CPython here as well.
#
# The tests drive Rust binaries of the workspace (a port_bench worker,
# need_service): built here in the debug profile unless already built.
# PYTEST_VENV overrides where the venv goes.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-python: $*" >&2; }

# Every CPython here from 3.10 on (pyenv's, and python3.1X on PATH),
# oldest first, one path per version.
version_of() {
  [ -x "$1" ] && "$1" -c 'import sys; assert sys.version_info >= (3, 10); print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}
pythons=()
while read -r _ path; do pythons+=("$path"); done < <(
  for candidate in "$HOME"/.pyenv/versions/3.1[0-9].*/bin/python3 \
      $(compgen -c python3.1 | grep -xE 'python3\.1[0-9]' | sort -u); do
    path=$(command -v "$candidate" || true)
    [ -n "$path" ] && version=$(version_of "$path") && echo "$version $path"
  done | sort -V -u -k1,1
)
# The oldest, where there is one; else python3.
python=${pythons[0]:-$(command -v python3 || echo python3)}
# The package's venv needs venv and ensurepip (Debian's python3 without
# python3-venv lacks them).
has_venv() { "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; }
if ! has_venv && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing python3-venv"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
has_venv || { say "$python lacks venv/ensurepip: install them (Debian: python3-venv)"; exit 1; }
version=$(version_of "$python") ||
  { say "$python is not a Python 3.10 or newer, which the package needs"; exit 1; }

venv=${PYTEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamo-test/pytest-$version}
stamp="$venv/.dynamo-test-requirements"
recipe=$(sha256sum python/test-requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$recipe" ]; then
  if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
    say "$venv exists and is not a virtualenv: not replacing it (set PYTEST_VENV elsewhere)"
    exit 1
  fi
  say "making $venv ($python, Python $version)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q -r python/test-requirements.txt >&2
  echo "$recipe" >"$stamp"
fi

# The wheel pip builds from ./python (what `pip install ./python` installs).
wheels=$(mktemp -d)
other=""
trap 'rm -rf "$wheels" ${other:+"$other"}' EXIT
say "building the wheel"
"$venv/bin/pip" wheel -q --no-deps -w "$wheels" ./python >&2
wheel=$(ls "$wheels"/dynamo_test-*.whl)
"$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel" >&2

say "the type hints: stubtest (the .pyi against the built module), mypy --strict"
"$venv/bin/python" -m mypy.stubtest dynamo_test._native
"$venv/bin/python" -m mypy --strict --no-incremental -p dynamo_test

cargo build -q -p dynamo-test-examples --bin port_bench
cargo build -q -p dynamo-test-suite --bin need_service
target=${CARGO_TARGET_DIR:-$PWD/target}
export DYNAMO_TEST_PORT_BENCH=$target/debug/port_bench
export DYNAMO_TEST_NEED_SERVICE=$target/debug/need_service

say "pytest -n 4 (Python $version)"
# From the repo's root: `python -m pytest` puts the current directory
# first on sys.path, and in python/ that would import the source tree's
# dynamo_test (without its native module) instead of the installed wheel.
"$venv/bin/python" -m pytest -n 4 -p no:cacheprovider --rootdir python python/tests

# abi3: the same wheel on the newest CPython here.
newest=""
[ ${#pythons[@]} -gt 0 ] && newest=${pythons[-1]}
if [ -n "$newest" ] && [ "$newest" != "$python" ]; then
  other=$(mktemp -d)
  "$newest" -m venv "$other/venv"
  "$other/venv/bin/pip" install -q --no-deps "$wheel" >&2
  "$other/venv/bin/python" -c '
import sys, dynamo_test
with dynamo_test.find_free_port() as r:
    assert 20000 <= r.port <= 32767, r
print("test-python: the wheel imports and reserves on Python %d.%d" % sys.version_info[:2])
' >&2
else
  say "one CPython here ($python): the abi3 wheel was tested on it alone"
fi
