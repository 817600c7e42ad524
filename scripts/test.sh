#!/usr/bin/env bash
# `npm test`: installs everything the tests need that npm and Go can fetch, then runs every test.
# - Postgres: TEST_DATABASE_URL if set (CI points it at Debian's PostgreSQL), otherwise the
#   test run starts a private embedded PostgreSQL itself (test/global-setup.ts).
# - Kubernetes: builds (first time ~15 min on 2 cores; then seconds) and starts the local
#   control plane in controlplane/, and stops it again when the tests end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

npm install --no-audit --no-fund
npm run setup
npm run typecheck

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
