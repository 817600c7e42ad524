# Shared settings and helpers for up.sh / down.sh (sourced, not executed).
# shellcheck shell=bash
BIN_DIR="${KEEL_CP_BIN_DIR:-$CP_DIR/.bin}"
STATE_DIR="${KEEL_CP_STATE_DIR:-$CP_DIR/.state}"
mkdir -p "$STATE_DIR" && STATE_DIR="$(cd "$STATE_DIR" && pwd)"
ETCD_PORT="${KEEL_CP_ETCD_PORT:-23790}"
ETCD_PEER_PORT=$((ETCD_PORT + 1))
API_PORT="${KEEL_CP_API_PORT:-16443}"
KCM_PORT="${KEEL_CP_KCM_PORT:-20257}"
SCHED_PORT="${KEEL_CP_SCHED_PORT:-20259}"
SANDBOX_METRICS_PORT="${KEEL_CP_SANDBOX_PORT:-20280}"
SANDBOX_PROBE_PORT=$((SANDBOX_METRICS_PORT + 1))
TIMEOUT="${KEEL_CP_TIMEOUT:-120}"
API_URL="https://127.0.0.1:$API_PORT"
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
NODE_NAME="${KEEL_CP_NODE_NAME:-kwok-node-0}"
# Start order; down.sh stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok agent-sandbox-controller)

log() { printf '[controlplane %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive NAME: true when the recorded pid runs this state dir's binary.
pid_alive() {
  local f="$STATE_DIR/pids/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$BIN_DIR/$1" || return 1
  # A zombie is not alive.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

# wait_for DESCRIPTION SHELL-CONDITION [NAME-OF-COMPONENT-TO-WATCH]
wait_for() {
  local what=$1 cond=$2 comp=${3:-} deadline=$((SECONDS + TIMEOUT))
  until eval "$cond" >/dev/null 2>&1; do
    if [[ -n "$comp" ]] && ! pid_alive "$comp"; then
      log "$comp exited; last lines of $STATE_DIR/logs/$comp.log:"
      tail -n 40 "$STATE_DIR/logs/$comp.log" >&2 || true
      die "$comp failed to start"
    fi
    if ((SECONDS >= deadline)); then
      [[ -n "$comp" ]] && { log "last lines of $STATE_DIR/logs/$comp.log:"; tail -n 40 "$STATE_DIR/logs/$comp.log" >&2 || true; }
      die "timed out after ${TIMEOUT}s waiting for $what"
    fi
    sleep 0.5
  done
}

# start_component NAME HEALTH-CONDITION COMMAND...: starts NAME detached unless it already runs.
start_component() {
  local name=$1 health=$2; shift 2
  if pid_alive "$name"; then
    wait_for "$name healthy" "$health" "$name"
    return 0
  fi
  if [[ "$health" != "pid_alive $name" ]] && eval "$health" >/dev/null 2>&1; then
    die "$name: its port already answers but not from a process of $STATE_DIR; another control plane is using it (set KEEL_CP_*_PORT / KEEL_CP_STATE_DIR)"
  fi
  log "starting $name (log: $STATE_DIR/logs/$name.log)"
  {
    echo "=== $(date -u +%FT%TZ) starting: $*"
  } >>"$STATE_DIR/logs/$name.log"
  setsid nohup "$@" >>"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/pids/$name.pid"
  local t0=$SECONDS
  wait_for "$name healthy" "$health" "$name"
  log "$name up in $((SECONDS - t0))s"
}
