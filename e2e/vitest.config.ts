// The end-to-end suite: Keel deployed on a real kind cluster (kind/up.sh, k8s/overlays/kind) and
// checked only through public surfaces: the HTTP API and dashboard on http://localhost:3000,
// kubectl against the cluster. Run by scripts/test.sh after the other suites:
//   npx vitest run --config e2e/vitest.config.ts
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    globalSetup: ["e2e/global-setup.ts"],
    // One cluster, shared: files run one after another.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 3_600_000,
  },
});
