#!/usr/bin/env bash
# Installs what the tests need from outside PyPI: Debian's prometheus. Go must already be there
# (it builds the control plane from the Go module proxy). Idempotent: installs only what is missing.
set -euo pipefail
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go >= 1.25 is required to build the local control plane (tests/cluster/build.sh);" >&2
  echo "       install it (Debian: apt-get install golang-go, or the official toolchain) and retry." >&2
  exit 1
fi
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: prometheus is missing; run as root or: sudo apt-get install -y prometheus" >&2
    exit 1
  fi
  echo "installing Debian's prometheus package" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
fi
# Debian's package may start its own daemon where an init system runs; the tests start theirs.
