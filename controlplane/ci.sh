#!/usr/bin/env bash
# What CI runs before the control-plane tests: build the pinned binaries (from nothing on a
# fresh machine: ~30 min on 2 cores, seconds when .bin/ is current), then start the control
# plane. Prints the admin kubeconfig path last. Stop it afterwards with controlplane/down.sh.
# Needs: Go >= 1.26 (go on PATH or /usr/local/go/bin/go), openssl, curl.
set -euo pipefail
CP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:/usr/local/go/bin"
t0=$SECONDS
"$CP_DIR/build.sh"
t1=$SECONDS
"$CP_DIR/up.sh"
echo "[controlplane ci] build $((t1 - t0))s, up $((SECONDS - t1))s" >&2
