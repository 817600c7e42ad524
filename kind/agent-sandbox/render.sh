#!/usr/bin/env bash
# Renders sandbox-with-extensions.yaml (kept in the repo: nothing is downloaded at install time)
# from the agent-sandbox Go module's own kustomization (k8s/kustomization.yaml: the controller
# once, extensions on, the four CRDs), with the ko:// placeholder replaced by the published image
# name. Run after changing AGENT_SANDBOX_VERSION in kind/airgap/versions.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../airgap/versions.sh"
dir=$(cd /tmp && GOFLAGS=-modcacherw go mod download -json "sigs.k8s.io/agent-sandbox@$AGENT_SANDBOX_VERSION" | jq -r .Dir)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -r "$dir/k8s/." "$work/" && chmod -R u+w "$work"
img="registry.k8s.io/agent-sandbox/agent-sandbox-controller:$AGENT_SANDBOX_VERSION"
{
  echo "# agent-sandbox $AGENT_SANDBOX_VERSION with extensions, rendered by kind/agent-sandbox/render.sh from the"
  echo "# Go module sigs.k8s.io/agent-sandbox@$AGENT_SANDBOX_VERSION (k8s/kustomization.yaml). Do not edit by hand."
  kubectl kustomize "$work" | sed "s#ko://sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller#$img#"
} > "$HERE/sandbox-with-extensions.yaml"
grep -c '^kind: ' "$HERE/sandbox-with-extensions.yaml" | sed 's/^/objects: /'
