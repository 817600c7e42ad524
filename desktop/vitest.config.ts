// Own config rather than the root one: these tests need the control plane (stopped at the end by
// ./test/global-setup.ts). The root global setup is reused for what the sessions and UI tests
// need from Keel itself: one PostgreSQL with a migrated template database and a current web build.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    globalSetup: ["../test/global-setup.ts", "./test/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    // One control plane for every file: files share it, so run them one after another.
    fileParallelism: false,
  },
});
