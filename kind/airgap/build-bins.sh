#!/usr/bin/env bash
# Builds every binary the air-gapped kind environment needs, from Go modules and Kubernetes source:
#   lane A  kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy
#           (go/kubernetes: controlplane/go/kubernetes's pins, so the compile cache is shared)
#   lane B  pause (static C from the kubernetes module), etcd (controlplane/go/etcd), coredns
#   lane C  crictl, kube-router (NetworkPolicy only), local-path-provisioner (PVCs),
#           agent-sandbox-controller, kind
# Output: $KEEL_KIND_CACHE/bin (default ~/.cache/keel-kind/bin). Idempotent: a binary whose stamp
# (its pins + flags + Go version) matches is kept. Needs Go >= 1.26 and a Go module proxy (or a
# GOPROXY mirror / GOFLAGS=-mod=vendor setup of your own when fully offline), gcc for pause.
# Env: GO_P (parallel compile jobs per lane, default 2), NICE (default 10).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
. "$HERE/versions.sh"
OUT="${KEEL_KIND_CACHE:-$HOME/.cache/keel-kind}/bin"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-modcacherw"
P="${GO_P:-2}"
mkdir -p "$OUT/.logs"
log() { printf '[bins %(%H:%M:%S)T] %s\n' -1 "$*"; }
K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X k8s.io/component-base/version.gitTreeState=clean"

# fresh <name> <stamp-input...>: 0 when $OUT/<name> exists with this stamp.
stamp() { printf '%s\n' "$@" "$(go env GOVERSION)" | sha256sum | cut -c1-16; }
fresh() { local n=$1; shift; [[ -x "$OUT/$n" && "$(cat "$OUT/.stamp-$n" 2>/dev/null)" == "$(stamp "$@")" ]]; }
mark() { local n=$1; shift; stamp "$@" > "$OUT/.stamp-$n"; }
# step <name> <stamp-input> <command...>: runs the command unless fresh; its log in $OUT/.logs.
step() {
  local n=$1 s=$2; shift 2
  if fresh "$n" "$s"; then log "$n: up to date"; return 0; fi
  log "$n: building"; local t0=$SECONDS
  if ! "$@" >"$OUT/.logs/$n.log" 2>&1; then log "$n: FAILED; log follows"; cat "$OUT/.logs/$n.log" >&2; return 1; fi
  mark "$n" "$s"; log "$n: built in $((SECONDS - t0))s"
}
goinstall() { # pkg@version ldflags [name-go-gives]
  GOBIN="$OUT" nice -n "${NICE:-10}" go install -p "$P" -trimpath -ldflags "-s -w ${2:-}" "$1"
}
k8s() {
  (cd "$HERE/go/kubernetes" && nice -n "${NICE:-10}" go build -mod=readonly -p "$P" -trimpath -ldflags "$K8S_LDFLAGS" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy)
  for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    mark "$b" "$K8S_STAMP"
  done
}
pause() {
  local src; src="$(cd "$HERE/go/kubernetes" && go list -mod=readonly -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  gcc -Os -Wall -Werror -static -DVERSION="v${PAUSE_VERSION}-keel" -o "$OUT/pause" "$src"
}
etcd() { (cd "$ROOT/controlplane/go/etcd" && nice -n "${NICE:-10}" go build -mod=readonly -p "$P" -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3); }

K8S_STAMP="$(cat "$HERE/go/kubernetes/go.mod" "$HERE/go/kubernetes/go.sum" | sha256sum) $K8S_LDFLAGS"
T0=$SECONDS
(
  step kubelet "$K8S_STAMP" k8s
  for b in kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    fresh "$b" "$K8S_STAMP" || { log "$b missing after the kubernetes build"; exit 1; }
  done
) > >(sed 's/^/[A] /') 2>&1 & A=$!
(
  step pause "$PAUSE_VERSION $(sha256sum < "$HERE/go/kubernetes/go.sum")" pause
  step etcd "$(sha256sum < "$ROOT/controlplane/go/etcd/go.sum")" etcd
  step coredns "$COREDNS_VERSION" goinstall "github.com/coredns/coredns@${COREDNS_VERSION}"
) > >(sed 's/^/[B] /') 2>&1 & B=$!
(
  step crictl "$CRICTL_VERSION" goinstall "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}" "-X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}"
  step kube-router "$KUBE_ROUTER_VERSION" goinstall "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${KUBE_ROUTER_VERSION}"
  step local-path-provisioner "$LOCAL_PATH_VERSION" goinstall "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}"
  step agent-sandbox-controller "$AGENT_SANDBOX_VERSION" goinstall "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller@${AGENT_SANDBOX_VERSION}"
  step kind "$KIND_VERSION" goinstall "sigs.k8s.io/kind@${KIND_VERSION}"
) > >(sed 's/^/[C] /') 2>&1 & C=$!
rc=0; wait $A || rc=1; wait $B || rc=1; wait $C || rc=1
((rc == 0)) || { log "FAILED after $((SECONDS - T0))s"; exit 1; }
log "all binaries in $OUT after $((SECONDS - T0))s"
