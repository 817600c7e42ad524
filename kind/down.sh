#!/usr/bin/env bash
# Deletes Keel's kind cluster (KEEL_KIND_CLUSTER, default keel) and everything in it. Images built
# by kind/up.sh stay in docker (the next kind/up.sh reuses them). Idempotent.
set -euo pipefail
CLUSTER="${KEEL_KIND_CLUSTER:-keel}"
CACHE="${KEEL_KIND_CACHE:-$HOME/.cache/keel-kind}"
[[ -x "$CACHE/bin/kind" ]] && ! command -v kind >/dev/null 2>&1 && PATH="$PATH:$CACHE/bin"
printf '\n==> [down] deleting kind cluster %s\n' "'$CLUSTER'"
command -v kind >/dev/null 2>&1 || { echo "kind/down.sh: kind is not installed, so there is no kind cluster to delete" >&2; exit 1; }
kind delete cluster --name "$CLUSTER"
