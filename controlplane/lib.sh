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
NODE_NAME=kwok-node-0
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

# leader_since_start NAME: the process started last (its log's last "=== " marker) holds its leader lease.
leader_since_start() {
  awk '/^=== /{found=0} /Successfully acquired lease/{found=1} END{exit !found}' "$STATE_DIR/logs/$1.log"
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

# run_id NAME COMMAND...: the command line plus the binary's build stamp (from build.sh).
run_id() {
  local name=$1; shift
  printf '%s\n%s\n' "$*" "$(cat "$BIN_DIR/.stamp-$name" 2>/dev/null)"
}

# start_component NAME HEALTH-CONDITION COMMAND...: starts NAME detached unless it already runs.
start_component() {
  local name=$1 health=$2; shift 2
  local cmdfile="$STATE_DIR/pids/$name.cmd"
  if pid_alive "$name"; then
    if [[ "$(cat "$cmdfile" 2>/dev/null)" == "$(run_id "$name" "$@")" ]]; then
      wait_for "$name healthy" "$health" "$name"
      return 0
    fi
    log "$name runs with other flags (binary or config changed); restarting it"
    stop_component "$name"
  fi
  if [[ "$health" != "pid_alive $name" ]] && eval "$health" >/dev/null 2>&1; then
    die "$name: its port already answers but not from a process of $STATE_DIR; another control plane is using it (set KEEL_CP_*_PORT / KEEL_CP_STATE_DIR)"
  fi
  log "starting $name (log: $STATE_DIR/logs/$name.log)"
  {
    echo "=== $(date -u +%FT%TZ) starting: $*"
  } >>"$STATE_DIR/logs/$name.log"
  setsid nohup "$@" >>"$STATE_DIR/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE_DIR/pids/$name.pid"
  run_id "$name" "$@" >"$cmdfile"
  local t0=$SECONDS i
  # The child is a shell, then setsid, then nohup until it execs the binary.
  for i in $(seq 1 100); do pid_alive "$name" && break; sleep 0.05; done
  wait_for "$name healthy" "$health" "$name"
  log "$name up in $((SECONDS - t0))s"
}

# stop_component NAME: TERM, then KILL after 10s; only the process recorded for this state dir.
stop_component() {
  local name=$1 pid _
  if pid_alive "$name"; then
    pid=$(cat "$STATE_DIR/pids/$name.pid")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do pid_alive "$name" || break; sleep 0.1; done
    if pid_alive "$name"; then
      log "$name did not exit after 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$name" || break; sleep 0.1; done
    fi
    pid_alive "$name" && die "$name (pid $pid) is still running"
  fi
  rm -f "$STATE_DIR/pids/$name.pid" "$STATE_DIR/pids/$name.cmd"
}
