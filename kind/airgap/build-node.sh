#!/usr/bin/env bash
# Builds the kind node image with no registry: kind's base image from Debian packages
# (base/Dockerfile), the component images kubeadm and the node's add-ons use (from the binaries of
# build-bins.sh, tagged as kubeadm asks for), then the node image itself: the steps of
# `kind build node-image`, except that every image is imported from a local tar (that command
# pulls etcd, CoreDNS, pause, kindnetd and local-path from registries).
# The node image carries manifests/default-cni.yaml (keel-cni + kube-router: pod network and
# NetworkPolicy) and manifests/default-storage.yaml (local-path-provisioner), applied by kind.
# Output: image $KEEL_KIND_NODE_IMAGE (default keel.local/kind-node:<k8s version>), labelled with
# a hash of everything it is built from; an image with the same hash is kept.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/versions.sh"
CACHE="${KEEL_KIND_CACHE:-$HOME/.cache/keel-kind}"
BIN="$CACHE/bin"
NODE_IMAGE="${KEEL_KIND_NODE_IMAGE:-keel.local/kind-node:$K8S_VERSION}"
BASE="debian:$DEBIAN_SUITE-slim"
REG=registry.k8s.io
export DOCKER_BUILDKIT=0
log() { printf '[node %(%H:%M:%S)T] %s\n' -1 "$*"; }

# The inputs: this folder's files (but not go/), and the binaries' stamps.
HASH=$( { cd "$HERE" && find . -path ./go -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum; cat "$BIN"/.stamp-* ; docker image inspect -f '{{.Id}}' "$BASE"; } | sha256sum | cut -c1-16)
if [[ "$(docker image inspect -f '{{index .Config.Labels "keel.inputs"}}' "$NODE_IMAGE" 2>/dev/null)" == "$HASH" && "${KEEL_REBUILD_NODE:-}" != 1 ]]; then
  log "$NODE_IMAGE is up to date ($HASH)"; exit 0
fi
for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause crictl kube-router local-path-provisioner; do
  [[ -x "$BIN/$b" ]] || { echo "build-node.sh: $BIN/$b is missing: run kind/airgap/build-bins.sh" >&2; exit 1; }
done
docker image inspect "$BASE" >/dev/null 2>&1 || { echo "build-node.sh: no $BASE image: run kind/images/build-bases.sh" >&2; exit 1; }
T0=$SECONDS
WORK=$(mktemp -d /tmp/keel-kind-node.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
IMGS="$WORK/images"; mkdir -p "$IMGS"

log "kind base image"
KIND_DIR=$(cd /tmp && GOFLAGS=-modcacherw go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir)
mkdir -p "$WORK/base/bin"
cp -r "$KIND_DIR/images/base/files" "$WORK/base/files" && chmod -R u+w "$WORK/base/files"
cp "$HERE/base/Dockerfile" "$HERE/base/12-cgroupv1.conf" "$WORK/base/"
cp "$BIN/crictl" "$WORK/base/bin/"
docker build -q --build-arg "BASE_IMAGE=debian:$DEBIAN_SUITE" -t keel.local/kind-base:"$DEBIAN_SUITE" "$WORK/base" >/dev/null

log "component images"
CTX="$WORK/ctx"; mkdir -p "$CTX/bin" "$CTX/rootfs/etc" "$CTX/rootfs/tmp"
chmod 1777 "$CTX/rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > "$CTX/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$CTX/rootfs/etc/group"
cp "$HERE"/images/* "$CTX/"
# scratch <binary> <dir or ""> <entrypoint or -> <tag>...: one static binary, FROM scratch.
scratch() {
  local bin=$1 dir=$2 entry=$3; shift 3
  cp "$BIN/$bin" "$CTX/bin/"
  { echo "FROM scratch"; echo "COPY rootfs/ /"; echo "COPY bin/$bin $dir/$bin"
    [[ $entry == - ]] || echo "ENTRYPOINT [\"$entry\"]"; } > "$CTX/Dockerfile.$bin"
  local tags=() t; for t in "$@"; do tags+=(-t "$t"); done
  docker build -q -f "$CTX/Dockerfile.$bin" "${tags[@]}" "$CTX" >/dev/null
  docker save -o "$IMGS/$bin.tar" "$@"
}
debianbased() { # <dockerfile> <tag> <binaries to copy...>
  local df=$1 tag=$2; shift 2
  local b; for b in "$@"; do cp "$BIN/$b" "$CTX/bin/"; done
  docker build -q -f "$CTX/$df" --build-arg "BASE_IMAGE=$BASE" -t "$tag" "$CTX" >/dev/null
  docker save -o "$IMGS/${tag//[\/:]/_}.tar" "$tag"
}
scratch kube-apiserver /usr/local/bin - "$REG/kube-apiserver:$K8S_VERSION"
scratch kube-controller-manager /usr/local/bin - "$REG/kube-controller-manager:$K8S_VERSION"
scratch kube-scheduler /usr/local/bin - "$REG/kube-scheduler:$K8S_VERSION"
scratch etcd /usr/local/bin - "$REG/etcd:$ETCD_TAG"
scratch coredns "" /coredns "$REG/coredns/coredns:$COREDNS_TAG"
scratch pause "" /pause "$REG/pause:$PAUSE_VERSION" "$REG/pause:3.10"
scratch local-path-provisioner /usr/local/bin - "keel.local/local-path-provisioner:$LOCAL_PATH_VERSION"
debianbased Dockerfile.kube-proxy "$REG/kube-proxy:$K8S_VERSION" kube-proxy
debianbased Dockerfile.keel-cni keel.local/keel-cni:v1 kubectl
debianbased Dockerfile.kube-router "keel.local/kube-router:$KUBE_ROUTER_VERSION" kube-router
# local-path's helper pods create and remove the volume directories.
docker save -o "$IMGS/debian.tar" "$BASE"

log "node image"
cid=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined keel.local/kind-base:"$DEBIAN_SUITE" infinity)
trap 'docker rm -f -v "$cid" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
nexec() { docker exec -i "$cid" "$@"; }
for b in kubeadm kubelet kubectl; do
  docker cp "$BIN/$b" "$cid:/usr/bin/$b"
  nexec chmod 0755 "/usr/bin/$b"; nexec chown root:root "/usr/bin/$b"
done
echo -n "$K8S_VERSION" | nexec sh -c 'cat > /kind/version'
nexec mkdir -p /kind/manifests
nexec sh -c 'cat > /kind/manifests/default-cni.yaml' < "$HERE/manifests/default-cni.yaml"
nexec sh -c 'cat > /kind/manifests/default-storage.yaml' < "$HERE/manifests/default-storage.yaml"
nexec bash -c 'nohup containerd > /var/log/containerd-build.log 2>&1 &'
nexec bash -c 'for i in $(seq 1 60); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1'
for tar in "$IMGS"/*.tar; do
  nexec ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - < "$tar" >/dev/null
done
# Every image kubeadm will ask for must be there, or the first `kind create cluster` pulls (and fails).
want=$(nexec kubeadm config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
have=$(nexec ctr --namespace=k8s.io images list -q)
for i in $want; do grep -qx "$i" <<<"$have" || { echo "build-node.sh: kubeadm wants $i, which is not in the node image" >&2; exit 1; }; done
nexec pkill containerd || true
nexec bash -c 'for i in $(seq 1 30); do pgrep containerd >/dev/null || exit 0; sleep 1; done'
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change "LABEL keel.inputs=$HASH" "$cid" "$NODE_IMAGE" >/dev/null
log "$NODE_IMAGE built in $((SECONDS - T0))s ($HASH)"
