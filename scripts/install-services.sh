#!/usr/bin/env bash
# Installs the real service binaries the suite starts (etcd, nats-server),
# unless they are already there. Debian/Ubuntu: packages etcd-server and
# nats-server. Other systems: install them yourself, or point ETCD_BIN and
# NATS_SERVER_BIN at the binaries.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/bin/$1" ]; }

missing=()
have etcd || missing+=(etcd-server)
have nats-server || missing+=(nats-server)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-services: missing ${missing[*]} and no apt-get here; install them or set ETCD_BIN / NATS_SERVER_BIN" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-services: installing ${missing[*]}"
$sudo apt-get update -qq
# policy-rc.d keeps the packages' own etcd service from starting on port 2379:
# tests start and own their instances.
if [ -z "$sudo" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
