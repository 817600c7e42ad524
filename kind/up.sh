#!/usr/bin/env bash
# Keel on a local kind cluster, in named steps. The desktop app's one-click launcher runs the same
# steps, one `--step NAME` at a time (desktop/src/main/launcher/steps.ts lists them in this order):
#   prereqs        docker CLI, a running engine with enough memory, kind, kubectl, a free local port
#   cluster        create the kind cluster                 (skipped: it exists)
#   agent-sandbox  install the pinned agent-sandbox release (skipped: that version is installed)
#   build          docker build the Keel image             (skipped: the image exists; KEEL_REBUILD=1)
#   load           kind load docker-image                  (skipped: every node has that image ID)
#   apply          kubectl apply -k k8s/overlays/kind      (skipped: kubectl diff finds no change)
#   rollout        wait for the Postgres, web and worker rollouts (read-only)
#   port-forward   http://localhost:3000 (Ctrl-C stops it; the cluster stays)
# So a second run on a ready cluster changes nothing and is quick. A skipped step prints one line
# starting with "skipped: " (the launcher shows the step as skipped).
# Usage: kind/up.sh [--step NAME | --from NAME | --list-steps | --down]
#   (no argument) every step; --from NAME that step and the ones after it (retry after a failure);
#   --step NAME only that one; --list-steps the names, one a line; --down delete the cluster.
# Env: KEEL_KIND_CLUSTER (keel), KEEL_IMAGE (keel:dev), KEEL_PORT (3000), KEEL_SKIP_BUILD=1 (never
# build), KEEL_REBUILD=1 (build even if the image exists), KEEL_MIN_DOCKER_MEMORY_MB (4096),
# KEEL_NO_PORT_FORWARD=1 (stop after the rollouts).
set -euo pipefail

AGENT_SANDBOX_VERSION=v0.5.6
AGENT_SANDBOX_MANIFEST="https://github.com/kubernetes-sigs/agent-sandbox/releases/download/${AGENT_SANDBOX_VERSION}/sandbox-with-extensions.yaml"
CLUSTER="${KEEL_KIND_CLUSTER:-keel}"
IMAGE="${KEEL_IMAGE:-keel:dev}"
PORT="${KEEL_PORT:-3000}"
MIN_MEMORY_MB="${KEEL_MIN_DOCKER_MEMORY_MB:-4096}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CTX="kind-$CLUSTER"
STEPS=(prereqs cluster agent-sandbox build load apply rollout port-forward)

say() { printf '\n==> [%s] %s\n' "$1" "$2"; }
skip() { printf 'skipped: %s\n' "$*"; }
die() { printf 'kind/up.sh: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CTX" "$@"; }

# Every missing thing at once, each with how to fix it.
step_prereqs() {
  say prereqs "checking prerequisites"
  local missing=()
  command -v docker >/dev/null 2>&1 || missing+=("docker: install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)")
  command -v kind >/dev/null 2>&1 || missing+=("kind: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), e.g. 'go install sigs.k8s.io/kind@v0.31.0'")
  command -v kubectl >/dev/null 2>&1 || missing+=("kubectl: install it (https://kubernetes.io/docs/tasks/tools/)")
  if ((${#missing[@]})); then
    printf 'kind/up.sh: missing prerequisites:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
  docker info >/dev/null 2>&1 || die "docker is installed but its engine does not answer ('docker info' failed): start Docker and retry"
  local mem
  mem="$(docker info --format '{{.MemTotal}}' 2>/dev/null || echo 0)"
  [[ "$mem" =~ ^[0-9]+$ ]] || mem=0
  if ((mem > 0 && mem / 1048576 < MIN_MEMORY_MB)); then
    die "Docker has $((mem / 1048576)) MiB of memory; Keel on kind needs at least $MIN_MEMORY_MB MiB: raise it (Docker Desktop: Settings > Resources > Memory) or free memory, then retry"
  fi
  # A connection that succeeds means something listens there (bash's /dev/tcp: no lsof needed).
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is in use: stop what listens there or set KEEL_PORT"
  fi
  echo "docker, kind and kubectl found; port $PORT is free"
}

step_cluster() {
  say cluster "kind cluster '$CLUSTER'"
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    skip "cluster '$CLUSTER' exists; reusing it"
  else
    kind create cluster --name "$CLUSTER" --config "$ROOT/kind/cluster.yaml" --wait 120s
  fi
}

step_agent_sandbox() {
  say agent-sandbox "agent-sandbox $AGENT_SANDBOX_VERSION (controller + extensions)"
  # The release's image tag is not ours to parse: the namespace records what this script applied.
  local installed
  installed="$(k get namespace agent-sandbox-system -o jsonpath='{.metadata.annotations.keel\.dev/agent-sandbox-version}' 2>/dev/null || true)"
  if [[ "$installed" == "$AGENT_SANDBOX_VERSION" ]]; then
    skip "agent-sandbox $AGENT_SANDBOX_VERSION is installed"
  else
    # Server-side: the Sandbox CRD is ~400 KB, over client-side apply's annotation limit.
    k apply --server-side --force-conflicts -f "$AGENT_SANDBOX_MANIFEST"
  fi
  k -n agent-sandbox-system rollout status deployment/agent-sandbox-controller --timeout=180s
  k wait --for=condition=Established --timeout=60s \
    crd/sandboxes.agents.x-k8s.io crd/sandboxclaims.extensions.agents.x-k8s.io \
    crd/sandboxtemplates.extensions.agents.x-k8s.io crd/sandboxwarmpools.extensions.agents.x-k8s.io
  [[ "$installed" == "$AGENT_SANDBOX_VERSION" ]] ||
    k annotate --overwrite namespace agent-sandbox-system "keel.dev/agent-sandbox-version=$AGENT_SANDBOX_VERSION"
}

step_build() {
  say build "building $IMAGE"
  if [[ "${KEEL_SKIP_BUILD:-}" == 1 ]]; then
    skip "KEEL_SKIP_BUILD=1"
  elif [[ "${KEEL_REBUILD:-}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    skip "image $IMAGE exists (KEEL_REBUILD=1 builds it again)"
  else
    docker build -t "$IMAGE" "$ROOT"
  fi
}

step_load() {
  say load "loading $IMAGE into kind"
  # kind compares image IDs itself and loads nothing when every node has this one.
  local out
  out="$(kind load docker-image "$IMAGE" --name "$CLUSTER" 2>&1)" || { printf '%s\n' "$out" >&2; exit 1; }
  printf '%s\n' "$out"
  if [[ "$out" == *"already present on all nodes"* ]]; then skip "every node has $IMAGE"; fi
}

step_apply() {
  say apply "applying k8s/overlays/kind"
  # kubectl diff: 0 no change, 1 changes, >1 an error (apply then reports it).
  local rc=0
  k diff --server-side -k "$ROOT/k8s/overlays/kind" >/dev/null 2>&1 || rc=$?
  if ((rc == 0)); then
    skip "k8s/overlays/kind is applied and unchanged"
  else
    k apply --server-side -k "$ROOT/k8s/overlays/kind"
  fi
}

step_rollout() {
  say rollout "waiting for rollouts"
  k -n keel rollout status statefulset/postgres --timeout=300s
  k -n keel rollout status deployment/keel-web --timeout=300s
  k -n keel rollout status deployment/keel-worker --timeout=300s
}

step_port_forward() {
  say port-forward "http://localhost:$PORT (Ctrl-C to stop forwarding; the cluster keeps running)"
  exec kubectl --context "$CTX" -n keel port-forward svc/keel-web "$PORT:3000"
}

run_step() {
  case "$1" in
    prereqs) step_prereqs ;;
    cluster) step_cluster ;;
    agent-sandbox) step_agent_sandbox ;;
    build) step_build ;;
    load) step_load ;;
    apply) step_apply ;;
    rollout) step_rollout ;;
    port-forward) step_port_forward ;;
    *) die "unknown step '$1' (steps: ${STEPS[*]})" ;;
  esac
}

# Runs the steps from $1 to the end.
run_from() {
  local started=""
  for s in "${STEPS[@]}"; do
    [[ -n "$started" || "$s" == "$1" ]] || continue
    started=1
    if [[ "$s" == port-forward && "${KEEL_NO_PORT_FORWARD:-}" == 1 ]]; then
      echo "ready: kubectl --context $CTX -n keel port-forward svc/keel-web $PORT:3000"
      return 0
    fi
    run_step "$s"
  done
  [[ -n "$started" ]] || die "unknown step '$1' (steps: ${STEPS[*]})"
}

case "${1:-}" in
  "") run_from prereqs ;;
  --step) run_step "${2:?--step needs a step name}" ;;
  --from) run_from "${2:?--from needs a step name}" ;;
  --list-steps) printf '%s\n' "${STEPS[@]}" ;;
  --down)
    say down "deleting kind cluster '$CLUSTER'"
    command -v kind >/dev/null 2>&1 || die "kind is not installed, so there is no kind cluster to delete"
    kind delete cluster --name "$CLUSTER"
    ;;
  *) die "unknown argument '$1' (usage: kind/up.sh [--step NAME | --from NAME | --list-steps | --down])" ;;
esac
