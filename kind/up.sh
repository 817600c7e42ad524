#!/usr/bin/env bash
# Keel on a local kind cluster, in named steps (the desktop app's one-click launcher runs the same):
#   1 check prerequisites   2 create the cluster   3 install agent-sandbox (pinned release)
#   4 build the image        5 load it into kind    6 apply k8s/overlays/kind
#   7 wait for rollouts      8 port-forward http://localhost:3000 (Ctrl-C stops it; the cluster stays)
# Env: KEEL_KIND_CLUSTER (keel), KEEL_IMAGE (keel:dev), KEEL_PORT (3000), KEEL_SKIP_BUILD=1 (reuse
# the image), KEEL_NO_PORT_FORWARD=1 (stop after the rollouts). Delete: kind delete cluster --name keel
set -euo pipefail

AGENT_SANDBOX_VERSION=v0.5.6
AGENT_SANDBOX_MANIFEST="https://github.com/kubernetes-sigs/agent-sandbox/releases/download/${AGENT_SANDBOX_VERSION}/sandbox-with-extensions.yaml"
CLUSTER="${KEEL_KIND_CLUSTER:-keel}"
IMAGE="${KEEL_IMAGE:-keel:dev}"
PORT="${KEEL_PORT:-3000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

step() { printf '\n==> [%s] %s\n' "$1" "$2"; }
die() { printf 'kind/up.sh: %s\n' "$*" >&2; exit 1; }

# ── 1 prerequisites: every missing thing at once, each with how to fix it ────────────────────
step 1 "checking prerequisites"
missing=()
command -v docker >/dev/null 2>&1 || missing+=("docker: install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)")
command -v kind >/dev/null 2>&1 || missing+=("kind: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), e.g. 'go install sigs.k8s.io/kind@v0.31.0'")
command -v kubectl >/dev/null 2>&1 || missing+=("kubectl: install it (https://kubernetes.io/docs/tasks/tools/)")
if ((${#missing[@]})); then
  printf 'kind/up.sh: missing prerequisites:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
docker info >/dev/null 2>&1 || die "docker is installed but its engine does not answer ('docker info' failed): start Docker and retry"
if command -v lsof >/dev/null 2>&1 && lsof -iTCP:"$PORT" -sTCP:LISTEN >/dev/null 2>&1; then
  die "port $PORT is in use: stop what listens there or set KEEL_PORT"
fi

# ── 2 cluster ────────────────────────────────────────────────────────────────────────────────
step 2 "kind cluster '$CLUSTER'"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "exists; reusing it"
else
  kind create cluster --name "$CLUSTER" --config "$ROOT/kind/cluster.yaml" --wait 120s
fi
CTX="kind-$CLUSTER"
k() { kubectl --context "$CTX" "$@"; }

# ── 3 agent-sandbox ──────────────────────────────────────────────────────────────────────────
step 3 "agent-sandbox $AGENT_SANDBOX_VERSION (controller + extensions)"
# Server-side: the Sandbox CRD is ~400 KB, over client-side apply's annotation limit.
k apply --server-side --force-conflicts -f "$AGENT_SANDBOX_MANIFEST"
k -n agent-sandbox-system rollout status deployment/agent-sandbox-controller --timeout=180s
k wait --for=condition=Established --timeout=60s \
  crd/sandboxes.agents.x-k8s.io crd/sandboxclaims.extensions.agents.x-k8s.io \
  crd/sandboxtemplates.extensions.agents.x-k8s.io crd/sandboxwarmpools.extensions.agents.x-k8s.io

# ── 4–5 image ────────────────────────────────────────────────────────────────────────────────
if [[ "${KEEL_SKIP_BUILD:-}" != 1 ]]; then
  step 4 "building $IMAGE"
  docker build -t "$IMAGE" "$ROOT"
fi
step 5 "loading $IMAGE into kind"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# ── 6–7 Keel ─────────────────────────────────────────────────────────────────────────────────
step 6 "applying k8s/overlays/kind"
k apply --server-side -k "$ROOT/k8s/overlays/kind"
step 7 "waiting for rollouts"
k -n keel rollout status statefulset/postgres --timeout=300s
k -n keel rollout status deployment/keel-web --timeout=300s
k -n keel rollout status deployment/keel-worker --timeout=300s

# ── 8 port-forward ───────────────────────────────────────────────────────────────────────────
if [[ "${KEEL_NO_PORT_FORWARD:-}" == 1 ]]; then
  echo "ready: kubectl --context $CTX -n keel port-forward svc/keel-web $PORT:3000"
  exit 0
fi
step 8 "http://localhost:$PORT (Ctrl-C to stop forwarding; the cluster keeps running)"
exec kubectl --context "$CTX" -n keel port-forward svc/keel-web "$PORT:3000"
