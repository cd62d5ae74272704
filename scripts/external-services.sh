#!/usr/bin/env bash
# etcd and nats-server on the port plan's fixed ports, started here and not
# by the harness: `external-services.sh start DIR` starts them (pids in DIR)
# and waits until healthy; `check DIR` fails unless both still run healthy;
# `stop DIR` stops exactly those two pids. scripts/test.sh uses it to check
# that tests reuse such instances and never stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=$1 dir=$2

bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || echo "/usr/local/bin/$1"; }
wait_healthy() {
  cargo run -q -p dynamo-test-cli -- \
    wait --timeout "$1" etcd://127.0.0.1:2379 nats://127.0.0.1:4222 http://127.0.0.1:8222/healthz
}

case $cmd in
start)
  mkdir -p "$dir"
  for port in 2379 2380 4222 8222; do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
      echo "external-services: port $port is in use; stop what holds it (see dynamo-test ports)" >&2
      exit 1
    fi
  done
  peer=http://127.0.0.1:2380 client=http://127.0.0.1:2379
  "$(bin etcd)" --name external --data-dir "$dir/etcd" \
    --listen-client-urls $client --advertise-client-urls $client \
    --listen-peer-urls $peer --initial-advertise-peer-urls $peer \
    --initial-cluster external=$peer >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  "$(bin nats-server)" -a 127.0.0.1 -p 4222 -m 8222 -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
  echo $! >"$dir/nats.pid"
  wait_healthy 30s
  ;;
check)
  for name in etcd nats; do
    pid=$(cat "$dir/$name.pid")
    kill -0 "$pid" 2>/dev/null || { echo "external $name (pid $pid) was stopped" >&2; exit 1; }
  done
  wait_healthy 5s
  ;;
stop)
  for name in etcd nats; do
    pid=$(cat "$dir/$name.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || true
  done
  for name in etcd nats; do
    pid=$(cat "$dir/$name.pid" 2>/dev/null) || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
  ;;
*)
  echo "usage: external-services.sh start|check|stop DIR" >&2
  exit 2
  ;;
esac
