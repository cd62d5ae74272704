#!/usr/bin/env bash
# The whole test suite: installs etcd/NATS if missing, then runs every test
# of the workspace under `cargo test` (threads in one process per binary)
# and under `cargo nextest run` (one process per test, all at once), then
# the pytest plugin's tests (python/) under `pytest -n 4`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-services.sh
# The real Dynamo for tests/tests/dynamo_*.rs: installed once into a venv
# outside the repo; here a missing Dynamo fails those tests instead of
# skipping them.
DYNAMO_PYTHON=$(bash scripts/install-dynamo.sh)
export DYNAMO_PYTHON DYNAMO_TEST_REQUIRE_DYNAMO=1

# Under cargo test, etcd and NATS on the plan's ports are external ones
# started here: every test must reuse them and leave them running. (Under
# nextest below, the harness starts and stops its own.)
echo "== external etcd and NATS"
external=$(mktemp -d)
trap 'bash scripts/external-services.sh stop "$external"' EXIT
bash scripts/external-services.sh start "$external"

echo "== cargo test"
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
# The runtime alone, without the `https` feature the suite turns on for
# the whole workspace: an https:// probe then names the missing feature.
cargo test -p dynamo-test --lib
# The connected clients (the runtime's features etcd-client and
# async-nats, the suite's `clients`; etcd-client's build needs protoc,
# installed above): their tests, and the runtime's doc examples of them.
# The nextest run of the same tests below reuses this build.
cargo test -p dynamo-test-suite --features clients --test clients
cargo test -p dynamo-test --features etcd-client,async-nats --doc inject::clients

echo "== the external etcd and NATS survived, healthy"
bash scripts/external-services.sh check "$external"
bash scripts/external-services.sh stop "$external"
trap - EXIT

if cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo nextest run"
  cargo nextest run --workspace --all-targets
  cargo nextest run -p dynamo-test-suite --features clients --test clients
else
  echo "cargo-nextest is not installed: cargo install cargo-nextest --locked" >&2
  exit 1
fi

# cargo nextest's own timeout: a test that hangs with a child and a
# grandchild is ended by nextest (SIGTERM to its group, then SIGKILL);
# within 2 s neither may be alive.
echo "== a hung test ended by cargo nextest"
pids_file=$(mktemp)
victim_log=$(mktemp)
if DYNAMO_TEST_VICTIM_PIDS=$pids_file cargo nextest run -p dynamo-test-suite \
    --test nextest_timeout --profile victim >"$victim_log" 2>&1; then
  cat "$victim_log" >&2
  echo "the hung test was expected to time out" >&2
  exit 1
fi
if ! grep -q "TIMEOUT" "$victim_log"; then
  cat "$victim_log" >&2
  echo "nextest did not report a timeout" >&2
  exit 1
fi
family=$(cat "$pids_file")
[ -n "$family" ] || { cat "$victim_log" >&2; echo "the hung test wrote no pids" >&2; exit 1; }
sleep 2
for pid in $family; do
  if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    echo "pid $pid of the hung test's family survived nextest's timeout" >&2
    exit 1
  fi
done
echo "family gone: $family"
rm -f "$pids_file" "$victim_log"

# Two partitions of one suite at once on one machine (how CI splits a
# run): one shared etcd and one NATS serve both, each test has its own
# namespace, and the tests of each partition meet one of the other's.
echo "== two nextest partitions at once"
cargo nextest run -p dynamo-test-suite --test partitions --no-run
part_log=$(mktemp)
: >"$part_log"
for k in 1 2; do
  # A 5 s grace: a partition's gap between two tests never outlasts it.
  DYNAMO_TEST_PARTITION_LOG=$part_log DYNAMO_TEST_PARTITION=$k DYNAMO_TEST_SERVICE_GRACE_MS=5000 \
    cargo nextest run -p dynamo-test-suite --test partitions --partition "count:$k/2" \
    >"$part_log.$k" 2>&1 &
  eval "part_pid_$k=$!"
done
part_failed=0
wait "$part_pid_1" || part_failed=1
wait "$part_pid_2" || part_failed=1
if [ "$part_failed" -ne 0 ]; then
  cat "$part_log.1" "$part_log.2" "$part_log" >&2
  echo "a partition failed" >&2
  exit 1
fi
cat "$part_log"
lines=$(wc -l <"$part_log")
etcds=$(grep -o 'etcd=[0-9]*' "$part_log" | sort -u | wc -l)
natss=$(grep -o 'nats=[0-9]*' "$part_log" | sort -u | wc -l)
namespaces=$(grep -o 'namespace=.*' "$part_log" | sort -u | wc -l)
partitions=$(grep -o 'partition=[12]' "$part_log" | sort -u | wc -l)
if [ "$lines" -lt 4 ] || [ "$partitions" -ne 2 ] || [ "$etcds" -ne 1 ] || [ "$natss" -ne 1 ] || [ "$namespaces" -ne "$lines" ]; then
  echo "expected 4+ tests from 2 partitions on 1 etcd and 1 NATS with distinct namespaces" >&2
  exit 1
fi
echo "both partitions on one etcd and one NATS, $namespaces namespaces"
rm -f "$part_log" "$part_log.1" "$part_log.2"

# The pytest side (python/): its own venv, the wheel built from ./python,
# pytest -n 4 over python/tests (with the Rust binaries above).
echo "== pytest (python/)"
bash scripts/test-python.sh

# Nothing the harness started may outlive the run: shared services stop a
# grace (2 s by default) after their last user. Processes it started carry
# DYNAMO_TEST_SERVICE (keepers and services) or DYNAMO_TEST_OWNER (children).
# The last shared services stop a grace after their last user (5 s in the
# partition step) plus their own stop (SIGTERM, up to 3 s): wait for that,
# at most 30 s, then nothing may be left.
echo "== leftovers"
harness_processes() {
  grep -lsE 'DYNAMO_TEST_(SERVICE|OWNER)=' /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx "$$" || true
}
left=$(harness_processes)
for _ in $(seq 300); do
  [ -z "$left" ] && break
  sleep 0.1
  left=$(harness_processes)
done
if [ -n "$left" ]; then
  echo "processes started by the harness are still running after the run:" >&2
  for pid in $left; do tr '\0' ' ' < "/proc/$pid/cmdline" >&2; echo >&2; done
  exit 1
fi
echo "none"
