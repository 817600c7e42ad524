#!/usr/bin/env bash
# Starts a real Kubernetes control plane for tests as local processes on loopback:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (one simulated node)
# and the agent-sandbox controller (with its CRDs installed).
# Idempotent: components already running and healthy are left alone.
# Prints the admin kubeconfig path on its last line of stdout.
#
# Env (all optional):
#   KEEL_CP_STATE_DIR   state dir (certs, etcd data, logs, pids)   default controlplane/.state
#   KEEL_CP_BIN_DIR     binaries from build.sh                      default controlplane/.bin
#   KEEL_CP_ETCD_PORT   etcd client port (peer port = this + 1)     default 23790
#   KEEL_CP_API_PORT    kube-apiserver secure port                  default 16443
#   KEEL_CP_KCM_PORT    kube-controller-manager secure port         default 20257
#   KEEL_CP_SCHED_PORT  kube-scheduler secure port                  default 20259
#   KEEL_CP_SANDBOX_PORT agent-sandbox metrics port (probes = +1)   default 20280
#   KEEL_CP_TIMEOUT     seconds to wait for each component           default 120
set -euo pipefail

CP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$CP_DIR/lib.sh"

# One up.sh/down.sh at a time per state dir (parallel test workers all call up.sh).
exec 9>"$STATE_DIR/.lock"
flock 9

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok agent-sandbox-controller; do
  [[ -x "$BIN_DIR/$b" ]] || die "missing $BIN_DIR/$b: run controlplane/build.sh first"
done
[[ -d "$BIN_DIR/share/agent-sandbox-crds" && -d "$BIN_DIR/share/kwok-stages" ]] ||
  die "missing $BIN_DIR/share: run controlplane/build.sh first"
command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
command -v curl >/dev/null || die "curl not found (apt-get install -y curl)"

T0=$SECONDS
mkdir -p "$STATE_DIR"/{pki,logs,pids,etcd,config}
chmod 700 "$STATE_DIR/etcd"
PKI="$STATE_DIR/pki"

# ---------------------------------------------------------------- certificates
gen_cert() { # name CN O [ext-file]
  local name=$1 cn=$2 o=$3 ext=${4:-}
  [[ -f "$PKI/$name.crt" ]] && return 0
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  local subj="/CN=$cn"; [[ -n "$o" ]] && subj="/O=$o/CN=$cn"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 ${ext:+-extfile "$ext"} -out "$PKI/$name.crt.tmp" 2>/dev/null
  mv "$PKI/$name.crt.tmp" "$PKI/$name.crt"
  rm -f "$PKI/$name.csr"
}
if [[ ! -f "$PKI/ca.crt" ]]; then
  log "generating certificates in $PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt.tmp" \
    -days 3650 -sha256 -subj "/CN=keel-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  mv "$PKI/ca.crt.tmp" "$PKI/ca.crt"
fi
cat >"$PKI/serving.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
cat >"$PKI/client.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
gen_cert apiserver kube-apiserver "" "$PKI/serving.ext"
gen_cert admin keel-admin system:masters "$PKI/client.ext"
gen_cert controller-manager system:kube-controller-manager "" "$PKI/client.ext"
gen_cert scheduler system:kube-scheduler "" "$PKI/client.ext"
if [[ ! -f "$PKI/sa.pub" ]]; then
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi

write_kubeconfig() { # file user cert-name
  local tmp="$1.tmp"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: keel-test
  cluster:
    server: $API_URL
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$3.crt
    client-key: $PKI/$3.key
contexts:
- name: keel-test
  context:
    cluster: keel-test
    user: $2
current-context: keel-test
EOF
  if [[ -f "$1" ]] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}
write_kubeconfig "$KUBECONFIG_PATH" keel-admin admin
write_kubeconfig "$STATE_DIR/config/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
write_kubeconfig "$STATE_DIR/config/scheduler.kubeconfig" system:kube-scheduler scheduler

KUBECTL=("$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" --request-timeout=30s)

# ---------------------------------------------------------------- etcd
start_component etcd "curl -fsS http://127.0.0.1:$ETCD_PORT/health" \
  "$BIN_DIR/etcd" --name keel-test --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "keel-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn

# ---------------------------------------------------------------- kube-apiserver
start_component kube-apiserver "curl -fsS --cacert $PKI/ca.crt $API_URL/readyz" \
  "$BIN_DIR/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" --etcd-prefix /registry \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
  --endpoint-reconciler-type none --enable-priority-and-fairness=false --profiling=false

# ---------------------------------------------------------------- controller-manager, scheduler
start_component kube-controller-manager "curl -fsS -k https://127.0.0.1:$KCM_PORT/healthz" \
  "$BIN_DIR/kube-controller-manager" \
  --kubeconfig "$STATE_DIR/config/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE_DIR/config/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE_DIR/config/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --controllers '*' --concurrent-gc-syncs 5 --profiling=false \
  --enable-hostpath-provisioner=true

start_component kube-scheduler "curl -fsS -k https://127.0.0.1:$SCHED_PORT/healthz" \
  "$BIN_DIR/kube-scheduler" \
  --kubeconfig "$STATE_DIR/config/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE_DIR/config/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE_DIR/config/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false --profiling=false

# ---------------------------------------------------------------- kwok + its node
STAGES=()
for f in "$BIN_DIR"/share/kwok-stages/*.yaml; do STAGES+=(--config "$f"); done
start_component kwok "pid_alive kwok" \
  "$BIN_DIR/kwok" --kubeconfig "$KUBECONFIG_PATH" "${STAGES[@]}" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 10.244.0.0/16 --node-ip 127.0.0.1 --node-lease-duration-seconds 40

if ! "${KUBECTL[@]}" get node "$NODE_NAME" >/dev/null 2>&1; then
  log "creating kwok node $NODE_NAME"
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
spec: {}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "500", ephemeral-storage: 1Ti}
  capacity: {cpu: "64", memory: 256Gi, pods: "500", ephemeral-storage: 1Ti}
EOF
fi
wait_for "node $NODE_NAME Ready" \
  "[[ \"\$(${KUBECTL[*]} get node $NODE_NAME -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" == True ]]"

# Ephemeral storage, as every kubelet reports it: sandbox pods request it (their team's
# ResourceQuota counts it), and a node without it fits none. A node made before this has none.
if [[ -z "$("${KUBECTL[@]}" get node "$NODE_NAME" -o 'jsonpath={.status.allocatable.ephemeral-storage}')" ]]; then
  "${KUBECTL[@]}" patch node "$NODE_NAME" --subresource=status --type=merge >/dev/null \
    -p '{"status":{"capacity":{"ephemeral-storage":"1Ti"},"allocatable":{"ephemeral-storage":"1Ti"}}}'
fi

# ---------------------------------------------------------------- storage
# Sandbox workspaces are PVCs: the default StorageClass `standard` (the name kind uses) is served
# by the controller-manager's in-tree hostPath provisioner (dev/test only, dirs under /tmp), so
# PVCs bind and pods that mount them get scheduled onto the kwok node.
if ! "${KUBECTL[@]}" get storageclass standard >/dev/null 2>&1; then
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
fi

# ---------------------------------------------------------------- agent-sandbox CRDs + controller
# Applied again whenever the files change (a version bump on an existing state dir), so the
# CRDs always match the controller binary built beside them.
CRDS_SUM=$(cat "$BIN_DIR"/share/agent-sandbox-crds/*.yaml | sha256sum | cut -c1-16)
if [[ "$(cat "$STATE_DIR/agent-sandbox-crds.sum" 2>/dev/null)" != "$CRDS_SUM" ]] ||
   ! "${KUBECTL[@]}" get crd sandboxes.agents.x-k8s.io sandboxclaims.extensions.agents.x-k8s.io \
      sandboxtemplates.extensions.agents.x-k8s.io sandboxwarmpools.extensions.agents.x-k8s.io >/dev/null 2>&1; then
  log "installing agent-sandbox CRDs"
  "${KUBECTL[@]}" apply --server-side --force-conflicts --field-manager keel-controlplane -f "$BIN_DIR/share/agent-sandbox-crds/" >/dev/null
  echo "$CRDS_SUM" >"$STATE_DIR/agent-sandbox-crds.sum"
fi
wait_for "agent-sandbox CRDs Established" \
  "${KUBECTL[*]} wait --for condition=Established --timeout=5s crd/sandboxes.agents.x-k8s.io crd/sandboxclaims.extensions.agents.x-k8s.io crd/sandboxtemplates.extensions.agents.x-k8s.io crd/sandboxwarmpools.extensions.agents.x-k8s.io"
"${KUBECTL[@]}" get namespace agent-sandbox-system >/dev/null 2>&1 ||
  "${KUBECTL[@]}" create namespace agent-sandbox-system >/dev/null

# agent-sandbox v1.0 serves v1beta1 only: no conversion webhook, no webhook flags.
KUBECONFIG="$KUBECONFIG_PATH" start_component agent-sandbox-controller \
  "curl -fsS http://127.0.0.1:$SANDBOX_PROBE_PORT/readyz && leader_since_start agent-sandbox-controller" \
  "$BIN_DIR/agent-sandbox-controller" --kubeconfig "$KUBECONFIG_PATH" \
  --extensions=true --leader-election-namespace=agent-sandbox-system \
  --metrics-bind-address "127.0.0.1:$SANDBOX_METRICS_PORT" \
  --health-probe-bind-address "127.0.0.1:$SANDBOX_PROBE_PORT"

log "control plane ready in $((SECONDS - T0))s (state: $STATE_DIR)"
echo "$KUBECONFIG_PATH"
