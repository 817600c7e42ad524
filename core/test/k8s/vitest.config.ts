// Runs only the k8s tests without the repo's global setup (which builds the web app and starts
// PostgreSQL; these tests need neither):  npx vitest run --config core/test/k8s/vitest.config.ts
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../.."),
  test: {
    include: ["core/test/k8s/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
