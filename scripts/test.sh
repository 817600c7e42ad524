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

trap 'bash controlplane/down.sh >/dev/null 2>&1 || true' EXIT
bash controlplane/ci.sh
npx vitest run "$@"
