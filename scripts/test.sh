#!/usr/bin/env bash
# The whole test suite: installs etcd/NATS if missing, then runs every test
# of the workspace under `cargo test` (threads in one process per binary)
# and under `cargo nextest run` (one process per test, all at once).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-services.sh

echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc

if cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo nextest run"
  cargo nextest run --workspace --all-targets
else
  echo "cargo-nextest is not installed: cargo install cargo-nextest --locked" >&2
  exit 1
fi
