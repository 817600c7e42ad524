#!/usr/bin/env bash
# Everything an air-gapped machine needs before kind/up.sh, in order, each step reusing what it
# built before (stamps and image labels by content hash): a running docker engine, the base images
# (kind/images/build-bases.sh), the Go binaries (build-bins.sh), the kind node image
# (build-node.sh). Where a registry is reachable none of this is needed: kind/up.sh pulls.
# Logs: $KEEL_KIND_CACHE/logs/*.log (default ~/.cache/keel-kind/logs).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOGS="${KEEL_KIND_CACHE:-$HOME/.cache/keel-kind}/logs"
mkdir -p "$LOGS"
ts() { printf '[airgap %(%H:%M:%S)T +%ss] %s\n' -1 "$SECONDS" "$*"; }
run() { # name command...: its output in $LOGS/name.log; on failure the log's end.
  local name=$1; shift
  ts "$name"
  "$@" > "$LOGS/$name.log" 2>&1 || { ts "$name FAILED; $LOGS/$name.log ends with:"; tail -30 "$LOGS/$name.log" >&2; exit 1; }
}
run docker bash "$HERE/start-docker.sh"
# The binaries (long, CPU-bound) and the base images (network, apt) at the same time.
bash "$HERE/build-bins.sh" > "$LOGS/bins.log" 2>&1 & bins=$!
run bases bash "$HERE/../images/build-bases.sh"
ts "bins (waiting)"
wait $bins || { ts "bins FAILED; $LOGS/bins.log ends with:"; tail -30 "$LOGS/bins.log" >&2; exit 1; }
run node bash "$HERE/build-node.sh"
ts "done"
