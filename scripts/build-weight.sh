#!/usr/bin/env bash
# What dynamo-test costs a user's cold build, against tokio alone.
#
#   bash scripts/build-weight.sh [--runs N] [--https] [--clients]
#
# Makes two tiny user crates in a temp dir: the anchor (tokio "full" as a
# dev-dependency, one #[tokio::test]) and the candidate (the same plus
# dynamo-test from this checkout, default features, one #[dynamo_test]);
# with --https a third (dynamo-test with features = ["https"]); with
# --clients two more, one per client feature, each with the client's crate
# as a dev-dependency and a #[dynamo_test] that takes the client:
# `with-etcd-client` (features = ["etcd-client"], etcd-client 0.21: needs
# protoc) and `with-async-nats` (features = ["async-nats"], async-nats 0.51
# without default features). Those are also compared with the candidate,
# the same crate with the features off. Each starts
# from this repo's Cargo.lock, so every arm builds the same crate versions.
# `cargo fetch` runs first (downloads are not counted); then each arm is
# built cold (`cargo test --no-run --offline`, a fresh CARGO_TARGET_DIR
# each time, RUSTC_WRAPPER unset so no compiler cache helps), N times,
# arms alternating. Prints the seconds of each build (with its ratio to the
# anchor of the same run), then per arm the mean and the minimum, each with
# its difference and ratio to the anchor's. On a noisy machine compare
# ratios from one run, not seconds across runs.
set -euo pipefail

runs=1
https=0
clients=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --https) https=1; shift ;;
    --clients) clients=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "--runs takes a number of runs, at least 1" >&2; exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/build-weight.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER

# make_crate NAME DEPENDENCY-LINE TEST-FILE-BODY
make_crate() {
  mkdir -p "$work/$1/src" "$work/$1/tests"
  cat >"$work/$1/Cargo.toml" <<EOF
[package]
name = "$1"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dev-dependencies]
tokio = { version = "1", features = ["full"] }
$2
EOF
  : >"$work/$1/src/lib.rs"
  printf '%s\n' "$3" >"$work/$1/tests/it.rs"
  cp "$repo/Cargo.lock" "$work/$1/Cargo.lock"
}

dynamo_test_body='use dynamo_test::dynamo_test;

#[dynamo_test]
async fn it_runs() {}'

make_crate anchor '' '#[tokio::test]
async fn it_runs() {}'
make_crate candidate "dynamo-test = { path = \"$repo/runtime\" }" "$dynamo_test_body"
arms=(anchor candidate)
if [ "$https" = 1 ]; then
  make_crate https "dynamo-test = { path = \"$repo/runtime\", features = [\"https\"] }" "$dynamo_test_body"
  arms+=(https)
fi
if [ "$clients" = 1 ]; then
  if ! command -v protoc >/dev/null 2>&1 && [ -z "${PROTOC:-}" ]; then
    echo "--clients builds etcd-client, which needs protoc: bash scripts/install-services.sh" >&2
    exit 1
  fi
  make_crate with-etcd-client "dynamo-test = { path = \"$repo/runtime\", features = [\"etcd-client\"] }
etcd-client = \"0.21\"" 'use dynamo_test::dynamo_test;

#[dynamo_test]
async fn it_runs(_client: etcd_client::Client) {}'
  make_crate with-async-nats "dynamo-test = { path = \"$repo/runtime\", features = [\"async-nats\"] }
async-nats = { version = \"0.51\", default-features = false }" 'use dynamo_test::dynamo_test;

#[dynamo_test]
async fn it_runs(_client: async_nats::Client) {}'
  arms+=(with-etcd-client with-async-nats)
fi

for arm in "${arms[@]}"; do
  (cd "$work/$arm" && cargo fetch --quiet)
done

# build ARM RUN: prints the seconds of one cold build.
build() {
  local target="$work/target-$1-$2" log="$work/$1-$2.log" start end
  start=$(date +%s.%N)
  if ! (cd "$work/$1" && CARGO_TARGET_DIR="$target" cargo test --no-run --offline >"$log" 2>&1); then
    cat "$log" >&2
    echo "the $1 build failed" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  rm -rf "$target"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

declare -A times # arm -> its seconds, space-separated
echo "cold builds on $(nproc) cores${CARGO_BUILD_JOBS:+, CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS}, $(cargo --version)"
for run in $(seq 1 "$runs"); do
  line="run $run:"
  for arm in "${arms[@]}"; do
    secs=$(build "$arm" "$run")
    times[$arm]="${times[$arm]:-} $secs"
    line="$line $arm ${secs}s"
    if [ "$arm" = anchor ]; then
      first=$secs
    else
      line="$line (x$(awk -v s="$secs" -v a="$first" 'BEGIN { printf "%.2f", s / a }'))"
    fi
  done
  echo "$line"
done

# Mean and minimum per arm (the minimum: the run least disturbed by other
# work on the machine), and each against the anchor's.
stats() { # "SECONDS..." -> "MEAN MIN"
  awk -v list="$1" 'BEGIN {
    n = split(list, t, " "); min = t[1]; sum = 0
    for (i = 1; i <= n; i++) { sum += t[i]; if (t[i] < min) min = t[i] }
    print sum / n, min
  }'
}
read -r a_mean a_min <<<"$(stats "${times[anchor]}")"
read -r c_mean c_min <<<"$(stats "${times[candidate]}")"
printf 'anchor (tokio alone): mean %.1fs, min %.1fs, %d runs\n' "$a_mean" "$a_min" "$runs"
for arm in "${arms[@]:1}"; do
  read -r mean min <<<"$(stats "${times[$arm]}")"
  awk -v arm="$arm" -v m="$mean" -v n="$min" -v am="$a_mean" -v an="$a_min" 'BEGIN {
    printf "%s: mean %.1fs (+%.1fs, x%.2f), min %.1fs (+%.1fs, x%.2f)", arm, m, m - am, m / am, n, n - an, n / an
  }'
  case "$arm" in
    with-etcd-client|with-async-nats)
      # Against dynamo-test with the features off, built in the same run.
      awk -v m="$mean" -v n="$min" -v cm="$c_mean" -v cn="$c_min" 'BEGIN {
        printf "; over the candidate (features off): mean +%.1fs (x%.2f), min +%.1fs (x%.2f)", m - cm, m / cm, n - cn, n / cn
      }' ;;
  esac
  echo
done
