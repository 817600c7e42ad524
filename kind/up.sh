#!/usr/bin/env bash
# Keel on a local kind cluster, in named steps. The desktop app's one-click launcher runs the same
# steps, one `--step NAME` at a time (desktop/src/shared/contract.ts lists them in this order):
#   prereqs        docker CLI, a running engine with enough memory, kind, kubectl, a free local port
#   cluster        create the kind cluster (kind/cluster.yaml)      (skipped: it exists)
#   agent-sandbox  install agent-sandbox from k8s/agent-sandbox/<version>/   (skipped: that version is installed)
#   build          docker build the Keel and sandbox images         (skipped: built from these sources)
#   load           kind load docker-image                           (skipped: every node has them)
#   apply          admin login + kubectl apply -k k8s/overlays/kind, the image's ID stamped on the
#                  pod templates so a rebuild under the same tag rolls the pods (skipped: no change)
#   rollout        wait for Postgres, web (its init container migrates) and worker; print the login
#   port-forward   the dashboard on http://localhost:$KEEL_PORT: kind publishes the web NodePort
#                  there; this step checks it answers (with --step: keeps watching it, for the
#                  launcher). A cluster made without that mapping falls back to kubectl port-forward.
# With no container registry (air-gapped), base images, the node image and the agent-sandbox
# controller are built locally (kind/images/build-bases.sh, kind/airgap/): see kind/README.md.
# A second run on a ready cluster changes nothing. A skipped step prints one line starting with
# "skipped: " (the launcher shows the step as skipped).
# Usage: kind/up.sh [--step NAME | --from NAME | --list-steps | --down]
# Env: KEEL_KIND_CLUSTER (keel), KEEL_IMAGE (keel:dev; the sandbox image is its name + "-sandbox"),
# KEEL_PORT (3000), KEEL_SKIP_BUILD=1, KEEL_REBUILD=1, KEEL_PULL=1 (pull KEEL_IMAGE and its sandbox image
# instead of building; also when there is no Dockerfile beside kind/), KEEL_MIN_DOCKER_MEMORY_MB (4096),
# KEEL_NO_PORT_FORWARD=1 (stop after the rollouts), KEEL_KIND_NODE_IMAGE (the node image; default:
# the locally built keel.local/kind-node when it exists, else kind's own), KEEL_AIRGAP=1 (never pull),
# KEEL_BUILD_CA_FILE (PEM: the CA of a TLS-inspecting proxy npm goes through during the build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=kind/airgap/versions.sh disable=SC1091
. "$ROOT/kind/airgap/versions.sh"
CLUSTER="${KEEL_KIND_CLUSTER:-keel}"
IMAGE="${KEEL_IMAGE:-keel:dev}"
SANDBOX_IMAGE="${IMAGE%:*}-sandbox:${IMAGE##*:}"
PORT="${KEEL_PORT:-3000}"
MIN_MEMORY_MB="${KEEL_MIN_DOCKER_MEMORY_MB:-4096}"
CACHE="${KEEL_KIND_CACHE:-$HOME/.cache/keel-kind}"
AGENT_SANDBOX_MANIFEST="$ROOT/k8s/agent-sandbox/$AGENT_SANDBOX_VERSION"
AGENT_SANDBOX_IMAGE="registry.k8s.io/agent-sandbox/agent-sandbox-controller:$AGENT_SANDBOX_VERSION"
POSTGRES_IMAGE="postgres:15-$DEBIAN_SUITE"
LOCAL_NODE_IMAGE="keel.local/kind-node:$K8S_VERSION"
CTX="kind-$CLUSTER"
STEPS=(prereqs cluster agent-sandbox build load apply rollout port-forward)
# kind built by kind/airgap/build-bins.sh, when there is no other.
[[ -x "$CACHE/bin/kind" ]] && ! command -v kind >/dev/null 2>&1 && PATH="$PATH:$CACHE/bin"

say() { printf '\n==> [%s] %s\n' "$1" "$2"; }
skip() { printf 'skipped: %s\n' "$*"; }
die() { printf 'kind/up.sh: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CTX" "$@"; }
cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; }

# Makes image $1 available to docker: present, pulled, or built by "$2..." (when no registry).
ensure_image() {
  local img=$1; shift
  docker image inspect "$img" >/dev/null 2>&1 && return 0
  if [[ "${KEEL_AIRGAP:-}" != 1 ]] && docker pull "$img"; then return 0; fi
  echo "$img: not in docker and not pullable; building it locally"
  "$@"
}

# Every missing thing at once, each with how to fix it.
step_prereqs() {
  say prereqs "checking prerequisites"
  local missing=()
  command -v docker >/dev/null 2>&1 || missing+=("docker: install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)")
  command -v kind >/dev/null 2>&1 || missing+=("kind: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), e.g. 'go install sigs.k8s.io/kind@$KIND_VERSION', or build everything with kind/airgap/build-bins.sh")
  command -v kubectl >/dev/null 2>&1 || missing+=("kubectl: install it (https://kubernetes.io/docs/tasks/tools/)")
  if ((${#missing[@]})); then
    printf 'kind/up.sh: missing prerequisites:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
  docker info >/dev/null 2>&1 || die "docker is installed but its engine does not answer ('docker info' failed): start Docker (as root without systemd: kind/airgap/start-docker.sh) and retry"
  local mem
  mem="$(docker info --format '{{.MemTotal}}' 2>/dev/null || echo 0)"
  [[ "$mem" =~ ^[0-9]+$ ]] || mem=0
  if ((mem > 0 && mem / 1048576 < MIN_MEMORY_MB)); then
    die "Docker has $((mem / 1048576)) MiB of memory; Keel on kind needs at least $MIN_MEMORY_MB MiB: raise it (Docker Desktop: Settings > Resources > Memory) or free memory, then retry"
  fi
  # Our own cluster publishes the port; anything else listening there is in the way.
  # A connection that succeeds means something listens there (bash's /dev/tcp: no lsof needed).
  if ! cluster_exists && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is in use: stop what listens there or set KEEL_PORT"
  fi
  echo "docker, kind and kubectl found; port $PORT is free"
}

step_cluster() {
  say cluster "kind cluster '$CLUSTER'"
  if cluster_exists; then
    skip "cluster '$CLUSTER' exists; reusing it"
    # A cluster made from an older cluster.yaml keeps its nodes (kind cannot add any): say so.
    local want have
    want="$(grep -c '^  - role: worker' "$ROOT/kind/cluster.yaml" || true)"
    have="$(k get nodes -l '!node-role.kubernetes.io/control-plane' -o name 2>/dev/null | grep -c . || true)"
    if ((have > 0 && have < want)); then
      echo "note: cluster '$CLUSTER' has $have worker node(s), kind/cluster.yaml asks for $want (room for more sandbox pods); kind/down.sh && kind/up.sh recreates it"
    fi
    return 0
  fi
  local config="$ROOT/kind/cluster.yaml" image=() node="${KEEL_KIND_NODE_IMAGE:-}"
  if [[ "$PORT" != 3000 ]]; then
    local text; text="$(<"$ROOT/kind/cluster.yaml")"
    config="${TMPDIR:-/tmp}/keel-kind-$CLUSTER-cluster.yaml"
    printf '%s\n' "${text//hostPort: 3000,/hostPort: $PORT,}" > "$config"
  fi
  [[ -z "$node" ]] && docker image inspect "$LOCAL_NODE_IMAGE" >/dev/null 2>&1 && node="$LOCAL_NODE_IMAGE"
  [[ -n "$node" ]] && image=(--image "$node")
  kind create cluster --name "$CLUSTER" "${image[@]}" --config "$config" --wait 180s
}

controller_image() {
  [[ -x "$CACHE/bin/agent-sandbox-controller" ]] || bash "$ROOT/kind/airgap/build-bins.sh"
  local ctx; ctx=$(mktemp -d)
  cp "$CACHE/bin/agent-sandbox-controller" "$ctx/"
  printf 'FROM scratch\nCOPY agent-sandbox-controller /agent-sandbox-controller\nUSER 65532:65532\nENTRYPOINT ["/agent-sandbox-controller"]\n' > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$AGENT_SANDBOX_IMAGE" "$ctx"
  rm -rf "$ctx"
}

step_agent_sandbox() {
  say agent-sandbox "agent-sandbox $AGENT_SANDBOX_VERSION (controller + extensions)"
  local installed
  installed="$(k get namespace agent-sandbox-system -o jsonpath='{.metadata.annotations.keel\.dev/agent-sandbox-version}' 2>/dev/null || true)"
  if [[ "$installed" == "$AGENT_SANDBOX_VERSION" ]]; then
    skip "agent-sandbox $AGENT_SANDBOX_VERSION is installed"
  else
    ensure_image "$AGENT_SANDBOX_IMAGE" controller_image
    kind load docker-image "$AGENT_SANDBOX_IMAGE" --name "$CLUSTER"
    # Server-side: the Sandbox CRD is ~200 KB, over client-side apply's annotation limit.
    k apply --server-side --force-conflicts -k "$AGENT_SANDBOX_MANIFEST"
  fi
  k -n agent-sandbox-system rollout status deployment/agent-sandbox-controller --timeout=180s
  k wait --for=condition=Established --timeout=60s \
    crd/sandboxes.agents.x-k8s.io crd/sandboxclaims.extensions.agents.x-k8s.io \
    crd/sandboxtemplates.extensions.agents.x-k8s.io crd/sandboxwarmpools.extensions.agents.x-k8s.io
  [[ "$installed" == "$AGENT_SANDBOX_VERSION" ]] ||
    k annotate --overwrite namespace agent-sandbox-system "keel.dev/agent-sandbox-version=$AGENT_SANDBOX_VERSION"
}

# A hash of the build context's files (git's view: tracked and untracked, not ignored), so an
# image built from the same sources is reused across runs and checkouts on this machine.
source_hash() {
  command -v git >/dev/null 2>&1 && git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || return 0
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard -- . ':!desktop' ':!e2e' ':!kind' ':!controlplane' ':!bench' ':!*.md' |
    xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-16)
}

step_build() {
  say build "building $IMAGE and $SANDBOX_IMAGE"
  local hash; hash="$(source_hash)"
  if [[ "${KEEL_SKIP_BUILD:-}" == 1 ]]; then
    skip "KEEL_SKIP_BUILD=1"
    return 0
  fi
  # No source tree to build from (the desktop app's bundled kind/ and k8s/), or asked to: the
  # published images, pulled unless docker has them.
  if [[ "${KEEL_PULL:-}" == 1 || ! -f "$ROOT/Dockerfile" ]]; then
    local img pulled=0
    for img in "$IMAGE" "$SANDBOX_IMAGE"; do
      docker image inspect "$img" >/dev/null 2>&1 && continue
      docker pull "$img" || die "cannot pull $img (no source tree here to build it from): check the name (KEEL_IMAGE / KEEL_PUBLISHED_IMAGE) and your access to its registry"
      pulled=1
    done
    ((pulled)) || skip "images $IMAGE and $SANDBOX_IMAGE are present"
    return 0
  fi
  local label='{{index .Config.Labels "keel.source"}}'
  if [[ "${KEEL_REBUILD:-}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1 && docker image inspect "$SANDBOX_IMAGE" >/dev/null 2>&1 &&
    { [[ -z "$hash" ]] || [[ "$(docker image inspect -f "$label" "$IMAGE")" == "$hash" && "$(docker image inspect -f "$label" "$SANDBOX_IMAGE")" == "$hash" ]]; }; then
    skip "images $IMAGE and $SANDBOX_IMAGE are built from these sources (KEEL_REBUILD=1 builds them again)"
    return 0
  fi
  local base
  for base in "node:$NODE_VERSION-$DEBIAN_SUITE-slim" "$POSTGRES_IMAGE"; do
    ensure_image "$base" bash "$ROOT/kind/images/build-bases.sh"
  done
  # A TLS-inspecting proxy's CA (PEM), for npm inside the build.
  local ca=()
  [[ -n "${KEEL_BUILD_CA_FILE:-}" ]] && ca=(--build-arg "EXTRA_CA_CERTS=$(<"$KEEL_BUILD_CA_FILE")")
  DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build "${ca[@]}" --label "keel.source=$hash" --target sandbox -t "$SANDBOX_IMAGE" "$ROOT"
  DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build "${ca[@]}" --label "keel.source=$hash" -t "$IMAGE" "$ROOT"
  docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${IMAGE}|${SANDBOX_IMAGE}) " || true
}

step_load() {
  say load "loading $IMAGE, $SANDBOX_IMAGE and $POSTGRES_IMAGE into kind"
  # kind compares image IDs itself and loads nothing when every node has them.
  local out img all=1
  ensure_image "$POSTGRES_IMAGE" bash "$ROOT/kind/images/build-bases.sh" postgres
  for img in "$IMAGE" "$SANDBOX_IMAGE" "$POSTGRES_IMAGE"; do
    out="$(kind load docker-image "$img" --name "$CLUSTER" 2>&1)" || { printf '%s\n' "$out" >&2; exit 1; }
    printf '%s\n' "$out"
    [[ "$out" == *"already present on all nodes"* ]] || all=0
  done
  if ((all)); then skip "every node has $IMAGE, $SANDBOX_IMAGE and $POSTGRES_IMAGE"; fi
}

# The dashboard's first admin: generated once, kept in the Secret keel-admin (the web reads it).
ensure_admin() {
  k get namespace keel >/dev/null 2>&1 || k create namespace keel
  k -n keel get secret keel-admin >/dev/null 2>&1 && return 0
  local pw; pw="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
  k -n keel create secret generic keel-admin --from-literal=KEEL_ADMIN_EMAIL=admin@keel.local --from-literal="KEEL_ADMIN_PASSWORD=$pw"
}

# Writes into directory $1 a kustomization: k8s/overlays/kind with the ID of the image just built
# stamped on the web and worker pod templates. A rebuild under the same tag (keel:dev) changes the
# ID, so apply rolls both Deployments onto it; without the stamp the spec is unchanged, apply is
# skipped and the old pods keep running the old code.
write_stamped_overlay() {
  local id
  id="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  cat > "$1/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../k8s/overlays/kind
patches:
  - target: { kind: Deployment, name: "keel-(web|worker)" }
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: { name: stamped }
      spec: { template: { metadata: { annotations: { keel.dev/image-id: "${id:-unknown}" } } } }
EOF
}

step_apply() {
  say apply "applying k8s/overlays/kind"
  ensure_admin
  local overlay rc=0
  # Inside the repo (.tmp/ is ignored): kustomize takes a base only by a relative path.
  mkdir -p "$ROOT/.tmp"
  overlay="$(mktemp -d "$ROOT/.tmp/keel-kind-apply.XXXXXX")" || die "cannot create a temporary directory in $ROOT/.tmp"
  write_stamped_overlay "$overlay"
  # kubectl diff: 0 no change, 1 changes, >1 an error (apply then reports it).
  k diff --server-side -k "$overlay" >/dev/null 2>&1 || rc=$?
  if ((rc == 0)); then
    skip "k8s/overlays/kind is applied and unchanged, and the pods run $IMAGE as built"
  else
    k apply --server-side -k "$overlay" || { rm -rf "$overlay"; exit 1; }
  fi
  rm -rf "$overlay"
}

login() {
  local email pw
  email="$(k -n keel get secret keel-admin -o jsonpath='{.data.KEEL_ADMIN_EMAIL}' 2>/dev/null | base64 -d 2>/dev/null || true)"
  pw="$(k -n keel get secret keel-admin -o jsonpath='{.data.KEEL_ADMIN_PASSWORD}' 2>/dev/null | base64 -d 2>/dev/null || true)"
  [[ -n "$email" ]] && printf 'log in as %s with the password %s\n' "$email" "$pw"
}

step_rollout() {
  say rollout "waiting for rollouts"
  k -n keel rollout status statefulset/postgres --timeout=300s
  k -n keel rollout status deployment/keel-web --timeout=300s
  k -n keel rollout status deployment/keel-worker --timeout=300s
  # A replaced web pod answers /readyz 503 through its shutdown delay while the Service may still
  # send it requests: "up" only once the old ones are gone (the e2e rebuild test once got that 503).
  local old
  old="$(k -n keel get pods -l app.kubernetes.io/component=web -o jsonpath='{range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name}{" "}{end}')"
  # shellcheck disable=SC2086 # one argument per pod name
  [[ -z "${old// /}" ]] || k -n keel wait --for=delete pod $old --timeout=120s >/dev/null
  printf 'Keel is up on kind: http://localhost:%s\n' "$PORT"
  login || true
}

answers() { curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; }

step_port_forward() {
  say port-forward "http://localhost:$PORT"
  if ! k -n keel get service keel-web-nodeport >/dev/null 2>&1 || ! docker port "$CLUSTER-control-plane" 30300/tcp 2>/dev/null | grep -q ":$PORT$"; then
    # A cluster created without the port mapping: forward (Ctrl-C stops it; the cluster stays).
    exec kubectl --context "$CTX" -n keel port-forward svc/keel-web "$PORT:3000"
  fi
  # Up to ~5 min: right after a rollout the node's Service rules can lag the Ready pod (seen once
  # under load: ~3 min of refused connections, then answering).
  for _ in $(seq 1 150); do answers && break; sleep 2; done
  if ! answers; then
    k -n keel get endpoints keel-web-nodeport -o wide >&2 || true
    k -n keel get pods -l app.kubernetes.io/component=web -o wide >&2 || true
    die "the dashboard does not answer on http://localhost:$PORT/readyz (kind's port mapping to the NodePort 30300); the Service's endpoints and the web pods are above"
  fi
  echo "Forwarding from 127.0.0.1:$PORT -> 3000 through kind's port mapping (NodePort 30300)"
  [[ "${WATCH:-}" == 1 ]] || return 0
  # The launcher keeps this step running while the dashboard is served; it ends when it stops.
  while answers || { sleep 5; answers; }; do sleep 5; done
  die "the dashboard stopped answering on http://localhost:$PORT"
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
      echo "ready: http://localhost:$PORT"
      return 0
    fi
    run_step "$s"
  done
  [[ -n "$started" ]] || die "unknown step '$1' (steps: ${STEPS[*]})"
}

case "${1:-}" in
  "") run_from prereqs ;;
  --step) WATCH=1 run_step "${2:?--step needs a step name}" ;;
  --from) run_from "${2:?--from needs a step name}" ;;
  --list-steps) printf '%s\n' "${STEPS[@]}" ;;
  --down) exec bash "$ROOT/kind/down.sh" ;;
  *) die "unknown argument '$1' (usage: kind/up.sh [--step NAME | --from NAME | --list-steps | --down])" ;;
esac
