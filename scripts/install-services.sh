#!/usr/bin/env bash
# Installs the real service binaries the suite starts (etcd, nats-server),
# and `protoc` with protobuf's well-known .proto files for the
# `etcd-client` feature's build (etcd-client compiles etcd's protobufs,
# which import google/protobuf/descriptor.proto), unless they are already
# there. Debian/Ubuntu: packages etcd-server, nats-server,
# protobuf-compiler and libprotobuf-dev (the .proto files: protoc alone
# fails with "google/protobuf/descriptor.proto: File not found"). Other
# systems: install them yourself, or point ETCD_BIN, NATS_SERVER_BIN and
# PROTOC at the binaries (a protoc release keeps its .proto files in its
# own include/).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/bin/$1" ]; }

missing=()
have etcd || missing+=(etcd-server)
have nats-server || missing+=(nats-server)
# PROTOC set to an executable counts (prost-build reads it); protoc finds
# the well-known types in /usr/include, /usr/local/include or its own
# ../include.
if [ -n "${PROTOC:-}" ] && [ -x "$PROTOC" ]; then
  protoc_bin=$PROTOC
else
  protoc_bin=$(command -v protoc || true)
  [ -n "$protoc_bin" ] || missing+=(protobuf-compiler)
fi
well_known=google/protobuf/descriptor.proto
protoc_include=$(dirname "$(dirname "${protoc_bin:-/nonexistent/bin/protoc}")")/include
if ! [ -e "/usr/include/$well_known" ] && ! [ -e "/usr/local/include/$well_known" ] &&
  ! [ -e "$protoc_include/$well_known" ]; then
  missing+=(libprotobuf-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-services: missing ${missing[*]} and no apt-get here; install them or set ETCD_BIN / NATS_SERVER_BIN / PROTOC" >&2
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
