#!/usr/bin/env bash
# Checks what the tests need from outside PyPI: Go, which builds the control plane and Prometheus
# from the Go module proxy (tests/cluster/build.sh).
set -euo pipefail
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go >= 1.26.7 is required to build the local control plane (tests/cluster/build.sh);" >&2
  echo "       install it (Debian: apt-get install golang-go, or the official toolchain) and retry." >&2
  exit 1
fi
