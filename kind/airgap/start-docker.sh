#!/usr/bin/env bash
# Starts dockerd when no engine answers (machines without systemd, CI). On a host whose capability
# bounding set lacks some capabilities (seen: a VM without CAP_SYS_RESOURCE), `docker run
# --privileged` fails ("unable to apply caps"), and kind always runs its nodes privileged: there
# dockerd's default runtime becomes runc-dropcaps (this folder), which drops the missing ones.
# Idempotent: an answering engine is left alone. Log: ${KEEL_DOCKERD_LOG:-/var/log/keel-dockerd.log}.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG="${KEEL_DOCKERD_LOG:-/var/log/keel-dockerd.log}"
if docker info >/dev/null 2>&1; then echo "docker engine answers; leaving it as it is"; exit 0; fi
command -v dockerd >/dev/null || { echo "start-docker.sh: no dockerd: run 'apt-get install -y docker.io' as root" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "start-docker.sh: starting dockerd needs root (run: sudo $0)" >&2; exit 1; }
args=()
# 41 capabilities (CAP_CHOWN..CAP_CHECKPOINT_RESTORE): every bit of 0x1ffffffffff set, or a wrapper.
bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
if (( (0x$bnd & 0x1ffffffffff) != 0x1ffffffffff )); then
  # A copy outside the worktree: dockerd keeps calling it after this checkout moves or goes.
  install -m 0755 "$HERE/runc-dropcaps" /usr/local/sbin/keel-runc-dropcaps
  mkdir -p /etc/docker
  conf=/etc/docker/daemon.json
  [[ -s $conf ]] || echo '{}' > "$conf"
  jq '.runtimes["runc-dropcaps"] = {path: "/usr/local/sbin/keel-runc-dropcaps"} | .["default-runtime"] = "runc-dropcaps"' \
    "$conf" > "$conf.tmp" && mv "$conf.tmp" "$conf"
  echo "capability bounding set $bnd lacks some capabilities: default runtime runc-dropcaps"
fi
nohup dockerd "${args[@]}" >>"$LOG" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { docker info --format 'dockerd {{.ServerVersion}} up (runtime {{.DefaultRuntime}}, cgroup v{{.CgroupVersion}}, {{.Driver}})'; exit 0; }
  sleep 1
done
echo "start-docker.sh: dockerd did not answer within 60 s; its log ($LOG) ends with:" >&2
tail -20 "$LOG" >&2
exit 1
