#!/usr/bin/env bash
# `npm start`: Keel on its embedded defaults (README "Quick start"): a supported Node
# (scripts/node-runtime.sh), dependencies, generated code, the dashboard build, then `keel up`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-runtime.sh
npm install --no-audit --no-fund
npm run setup
node server/build.mjs
exec node cli/bin/keel.mjs up "$@"
