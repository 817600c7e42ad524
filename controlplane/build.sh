#!/usr/bin/env bash
# Builds the test control plane's binaries from the pinned Go wrapper modules in go/*/
# into controlplane/.bin/. Idempotent: a binary whose stamp (hash of its module's
# go.mod + go.sum + build flags) matches is not rebuilt.
#
# Env: KEEL_CP_BIN_DIR (default controlplane/.bin), GO (default: go on PATH, else
#      /usr/local/go/bin/go), KEEL_CP_GO_P (parallel compile jobs per lane, default 2).
set -euo pipefail

CP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN_DIR="${KEEL_CP_BIN_DIR:-$CP_DIR/.bin}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
P="${KEEL_CP_GO_P:-2}"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -modcacherw -mod=readonly"
# k8s v1.36 and agent-sandbox v1.0.1 want Go >= 1.26; never fetch a toolchain silently.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

K8S_VERSION=v1.36.3
K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"
KWOK_LDFLAGS="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0 -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION}"

mkdir -p "$BIN_DIR/share" "$BIN_DIR/.logs"
log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*"; }

stamp_of() { # module-dir ldflags
  { cat "$CP_DIR/go/$1/go.mod" "$CP_DIR/go/$1/go.sum"; echo "$2"; "$GO" env GOVERSION; } | sha256sum | cut -c1-16
}

up_to_date() { # stamp binaries...
  local stamp=$1; shift
  local b
  for b in "$@"; do
    [[ -x "$BIN_DIR/$b" && -f "$BIN_DIR/.stamp-$b" && "$(cat "$BIN_DIR/.stamp-$b")" == "$stamp" ]] || return 1
  done
}

# build_module <module-dir> <ldflags> <name=package>...
build_module() {
  local mod=$1 ldflags=$2; shift 2
  local stamp names=() pkgs=() pair
  stamp=$(stamp_of "$mod" "$ldflags")
  for pair in "$@"; do names+=("${pair%%=*}"); pkgs+=("${pair#*=}"); done
  if up_to_date "$stamp" "${names[@]}"; then
    log "$mod: up to date (${names[*]})"
    return 0
  fi
  log "$mod: building ${names[*]}"
  local t0=$SECONDS tmp
  tmp=$(mktemp -d "$BIN_DIR/.tmp-$mod.XXXXXX")
  if ! (cd "$CP_DIR/go/$mod" && "$GO" build -p "$P" -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") \
      >"$BIN_DIR/.logs/$mod.log" 2>&1; then
    log "$mod: FAILED after $((SECONDS - t0))s; log follows"
    cat "$BIN_DIR/.logs/$mod.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  local i
  for i in "${!names[@]}"; do
    # go build -o dir/ names a binary after its package's last path element, skipping a
    # major-version suffix (go.etcd.io/etcd/server/v3 -> server).
    local elem pkg=${pkgs[$i]}
    elem=$(basename "$pkg")
    [[ "$elem" =~ ^v[0-9]+$ ]] && elem=$(basename "$(dirname "$pkg")")
    mv -f "$tmp/$elem" "$BIN_DIR/${names[$i]}"
    echo "$stamp" >"$BIN_DIR/.stamp-${names[$i]}"
  done
  rm -rf "$tmp"
  log "$mod: built ${names[*]} in $((SECONDS - t0))s"
}

# Data files shipped inside the modules: agent-sandbox CRDs, kwok stages.
copy_share() {
  local dir version
  # The CRDs kind and production install (k8s/agent-sandbox/<version>/, generated from this
  # same module by k8s/agent-sandbox/generate.sh), so tests run against exactly those.
  version=$(awk '$1 == "sigs.k8s.io/agent-sandbox" { print $2 }' "$CP_DIR/go/agent-sandbox/go.mod")
  dir="$CP_DIR/../k8s/agent-sandbox/$version/crds"
  [[ -d "$dir" ]] || { log "no $dir: run k8s/agent-sandbox/generate.sh"; return 1; }
  rm -rf "$BIN_DIR/share/agent-sandbox-crds" && mkdir -p "$BIN_DIR/share/agent-sandbox-crds"
  cp "$dir"/*.yaml "$BIN_DIR/share/agent-sandbox-crds/"
  dir=$(cd "$CP_DIR/go/kwok" && "$GO" mod download -json sigs.k8s.io/kwok | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  rm -rf "$BIN_DIR/share/kwok-stages" && mkdir -p "$BIN_DIR/share/kwok-stages"
  local f
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cp "$dir/kustomize/stage/$f" "$BIN_DIR/share/kwok-stages/$(basename "$f")"
  done
  chmod -R u+w "$BIN_DIR/share"
}

T0=$SECONDS
log "go: $("$GO" version); GOMODCACHE=$("$GO" env GOMODCACHE) GOCACHE=$("$GO" env GOCACHE)"

# Two lanes on 2 cores: the big Kubernetes build, and the three small ones one after another.
(
  build_module kubernetes "$K8S_LDFLAGS" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kubectl=k8s.io/kubernetes/cmd/kubectl
) & LANE_A=$!
(
  build_module etcd "-s -w" etcd=go.etcd.io/etcd/server/v3
  build_module kwok "$KWOK_LDFLAGS" kwok=sigs.k8s.io/kwok/cmd/kwok
  build_module agent-sandbox "-s -w" agent-sandbox-controller=sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller
  copy_share
) & LANE_B=$!

rc=0
wait $LANE_A || rc=1
wait $LANE_B || rc=1
if [[ $rc -ne 0 ]]; then log "build FAILED after $((SECONDS - T0))s"; exit 1; fi
log "all binaries ready in $BIN_DIR after $((SECONDS - T0))s"
