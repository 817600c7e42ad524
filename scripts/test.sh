#!/usr/bin/env bash
# `npm test`: installs everything the tests need that npm and Go can fetch, then runs every test.
# - Postgres: TEST_DATABASE_URL if set (CI points it at Debian's PostgreSQL), otherwise the
#   test run starts a private embedded PostgreSQL itself (test/global-setup.ts).
# - Kubernetes: builds (first time ~15 min on 2 cores; then seconds) and starts the local
#   control plane in controlplane/, and stops it again when the tests end.
# - kind: the e2e suite deploys Keel on a kind cluster (kind/up.sh) and checks it end to end; with
#   no registry everything is built locally first (cold ~30+ min on 2 cores; then reused).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
# Node >= 22.12 first on PATH (fetched once when the machine has an older one).
source scripts/node-runtime.sh

# System packages the tests use: installed here when running as root (apt), otherwise the run
# stops at once naming the command to run. Never skipped. bubblewrap: local sandboxes; chromium:
# dashboard tests; docker.io, debootstrap, jq, gcc, curl, git: the e2e suite on kind (e2e/).
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
[[ -x "${KEEL_CHROMIUM:-/usr/bin/chromium}" ]] || need+=(chromium)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
for tool in jq gcc curl git; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  else
    echo "npm test: missing system packages; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

npm install --no-audit --no-fund
npm run setup
npm run typecheck
# The boundary lint (.dependency-cruiser.cjs: packages reached only through their exports, no
# cycles, the layer rules) and the formatter (prettier --check): fails in seconds, before any test.
npm run lint

stop_control_planes() {
  bash controlplane/down.sh >/dev/null 2>&1 || true
  # The desktop tests' own instance (desktop/test/control-plane.ts), in case they stopped early.
  KEEL_CP_STATE_DIR=/tmp/keel-cp-desktop KEEL_CP_ETCD_PORT=43790 KEEL_CP_API_PORT=36443 KEEL_CP_KCM_PORT=40257 \
    KEEL_CP_SCHED_PORT=40259 KEEL_CP_SANDBOX_PORT=40280 bash controlplane/down.sh >/dev/null 2>&1 || true
}
trap stop_control_planes EXIT
bash controlplane/ci.sh
npx vitest run "$@"
# The desktop's main-process modules, against a control plane of their own (desktop/README.md).
npx vitest run --config desktop/vitest.config.ts
# End to end on a kind cluster (e2e/README.md): a docker engine (started here if none answers),
# then, when no registry answers (KEEL_AIRGAP=1, or a pull of the Debian base fails), everything
# built locally (kind/airgap/build-all.sh; reused when unchanged), then the suite.
bash kind/airgap/start-docker.sh
if [[ -z "${KEEL_AIRGAP:-}" ]]; then
  KEEL_AIRGAP=0
  timeout 60 docker pull -q debian:bookworm-slim >/dev/null 2>&1 || KEEL_AIRGAP=1
fi
export KEEL_AIRGAP
# This machine's own CAs (a TLS-inspecting proxy) for npm inside the image build.
if [[ -z "${KEEL_BUILD_CA_FILE:-}" ]] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  export KEEL_BUILD_CA_FILE=/tmp/keel-build-ca.pem
  cat /usr/local/share/ca-certificates/*.crt > "$KEEL_BUILD_CA_FILE"
fi
if [[ "$KEEL_AIRGAP" == 1 ]]; then bash kind/airgap/build-all.sh; fi
npx vitest run --config e2e/vitest.config.ts
