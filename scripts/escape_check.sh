#!/usr/bin/env bash
# Runs the `escapee` test process RUNS times for each way a descendant can
# leave its child's process group (setsid, double-forked daemon, own process
# group) and each way the test ends (passes, panics, is SIGKILLed), and
# counts the descendants still alive 10 s after the end. Prints a table;
# exits 1 if any survived.
#   bash scripts/escape_check.sh [RUNS]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build -q -p dynamo-test-suite --bin escapee
bin=target/debug/escapee
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
total=0
printf '%-8s %-6s %5s %9s\n' kind ending runs survivors
for kind in setsid daemon pgroup leader-exits; do
  for ending in pass panic hang; do
    survivors=0
    for _ in $(seq "$runs"); do
      log="$out/stdout"; : >"$log"
      DYNAMO_TEST_OUTPUT_DIR="$out/o" setsid "$bin" "$ending" "$kind" >"$log" 2>/dev/null &
      pid=$!
      descendant=
      for _ in $(seq 300); do
        descendant=$(sed -n 's/^pids [0-9]* \([0-9]*\)$/\1/p' "$log")
        [ -n "$descendant" ] && break
        sleep 0.05
      done
      case "$descendant" in ''|*[!0-9]*) echo "escapee $ending $kind printed no pids" >&2; exit 2;; esac
      if [ "$ending" = hang ]; then kill -9 "$pid"; fi
      wait "$pid" 2>/dev/null || true
      for _ in $(seq 100); do alive "$descendant" || break; sleep 0.1; done
      if alive "$descendant"; then survivors=$((survivors + 1)); kill -9 "$descendant"; fi
    done
    total=$((total + survivors))
    printf '%-8s %-6s %5s %9s\n' "$kind" "$ending" "$runs" "$survivors"
  done
done
echo "survivors in all: $total"
[ "$total" -eq 0 ]
