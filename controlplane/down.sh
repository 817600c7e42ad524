#!/usr/bin/env bash
# Stops every process that up.sh started for this state dir (KEEL_CP_STATE_DIR).
# --purge also deletes the state dir (certificates, etcd data, logs).
set -euo pipefail
CP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$CP_DIR/lib.sh"

# One up.sh/down.sh at a time per state dir (parallel test workers all call up.sh).
exec 9>"$STATE_DIR/.lock"
flock 9

for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  stop_component "${COMPONENTS[$i]}"
done
if [[ "${1:-}" == --purge ]]; then
  rm -rf "$STATE_DIR"
  log "stopped; removed $STATE_DIR"
else
  log "stopped (state kept in $STATE_DIR; down.sh --purge removes it)"
fi
