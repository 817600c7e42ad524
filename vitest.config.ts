import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/test/**/*.test.ts"],
    // desktop/ runs with its own config (its own control plane, stopped at the end): scripts/test.sh.
    exclude: ["**/node_modules/**", ".tmp/**", "desktop/**"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files run in parallel processes, each on its own database; 2 cores here.
    pool: "forks",
    maxWorkers: 2,
  },
});
