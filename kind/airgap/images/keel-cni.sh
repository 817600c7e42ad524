#!/bin/bash
# A minimal kindnet (kindnetd is not served by the Go module proxy): a hostNetwork DaemonSet with
# /etc/cni/net.d mounted that
# - writes /etc/cni/net.d/10-keel.conflist (ptp + host-local on this node's podCIDR + portmap)
# - routes every other node's podCIDR via that node's InternalIP
# - masquerades pod traffic leaving the pod subnet (POD_SUBNET)
set -u
: "${NODE_NAME:?}" "${POD_SUBNET:?}"
CONF=/etc/cni/net.d/10-keel.conflist
iptables -t nat -N KEEL-MASQ 2>/dev/null || true
iptables -t nat -C POSTROUTING -j KEEL-MASQ 2>/dev/null || iptables -t nat -A POSTROUTING -j KEEL-MASQ
iptables -t nat -F KEEL-MASQ
iptables -t nat -A KEEL-MASQ -d "$POD_SUBNET" -j RETURN
iptables -t nat -A KEEL-MASQ -s "$POD_SUBNET" -j MASQUERADE
while true; do
  nodes=$(kubectl get nodes -o json) || { sleep 2; continue; }
  cidr=$(jq -r --arg n "$NODE_NAME" '.items[] | select(.metadata.name==$n) | .spec.podCIDR // empty' <<<"$nodes")
  if [[ -n "$cidr" ]]; then
    want=$(jq -n --arg cidr "$cidr" '{cniVersion:"0.4.0", name:"keel", plugins:[
      {type:"ptp", ipMasq:false, mtu:1500, ipam:{type:"host-local", dataDir:"/run/cni-ipam-state", ranges:[[{subnet:$cidr}]], routes:[{dst:"0.0.0.0/0"}]}},
      {type:"portmap", capabilities:{portMappings:true}}]}')
    if [[ "$(cat "$CONF" 2>/dev/null)" != "$want" ]]; then
      echo "$want" > "$CONF.tmp" && mv "$CONF.tmp" "$CONF" && echo "wrote $CONF for $cidr"
    fi
  fi
  jq -r --arg n "$NODE_NAME" '.items[] | select(.metadata.name!=$n and .spec.podCIDR!=null)
      | "\(.spec.podCIDR) \(.status.addresses[] | select(.type=="InternalIP") | .address)"' <<<"$nodes" |
    while read -r pc ip; do ip route replace "$pc" via "$ip" 2>/dev/null || true; done
  sleep 10
done
