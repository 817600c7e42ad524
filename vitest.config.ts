import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", ".tmp/**"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files run in parallel processes, each on its own database; 2 cores here.
    pool: "forks",
    maxWorkers: 2,
  },
});
