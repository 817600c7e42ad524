#!/usr/bin/env bash
# Stops every process that up.sh started for this state dir (KEEL_CP_STATE_DIR).
# --purge also deletes the state dir (certificates, etcd data, logs).
set -euo pipefail
CP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$CP_DIR/lib.sh"

for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  name=${COMPONENTS[$i]}
  if pid_alive "$name"; then
    pid=$(cat "$STATE_DIR/pids/$name.pid")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do pid_alive "$name" || break; sleep 0.1; done
    if pid_alive "$name"; then
      log "$name did not exit after 10s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$name" || break; sleep 0.1; done
    fi
    pid_alive "$name" && die "$name (pid $pid) is still running"
  fi
  rm -f "$STATE_DIR/pids/$name.pid"
done
if [[ "${1:-}" == --purge ]]; then
  rm -rf "$STATE_DIR"
  log "stopped; removed $STATE_DIR"
else
  log "stopped (state kept in $STATE_DIR; --purge removes it)"
fi
