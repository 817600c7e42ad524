// `keel worker` processes for tests, as shipped (cli/bin/keel.mjs), on a private sandbox dir: every
// worker must be gone after each test, and the sandboxes (which outlive workers by design) are
// released and their files removed after the file.
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { LocalSandboxDriver, SandboxStore } from "@keel/core";
import type { Fixture } from "@keel/core/testing/fixture";

const keel = path.resolve(import.meta.dirname, "../../cli/bin/keel.mjs");
const runtimeScript = path.resolve(import.meta.dirname, "../../sandbox/dist/runtime.mjs");

export type KeelWorker = { child: ChildProcess; exited: Promise<NodeJS.Signals | number | null> };

export function useKeelWorkers(f: Fixture): { start(env?: Record<string, string>): KeelWorker } {
  const live = new Set<ChildProcess>();
  let sandboxDir: string;
  beforeAll(async () => {
    sandboxDir = await mkdtemp(path.join(tmpdir(), "keel-wsb-"));
    await chmod(sandboxDir, 0o711); // sandboxes run as an unprivileged uid that must reach their dirs
  });
  afterEach(() => {
    const left = live.size;
    for (const c of live) c.kill("SIGKILL");
    expect(left, "a worker process was left running").toBe(0);
  });
  afterAll(async () => {
    // Sandboxes outlive workers by design: stop their runtimes, then remove their files.
    const driver = new LocalSandboxDriver({ baseDir: sandboxDir, runtimeScript, store: new SandboxStore(f.pool) });
    for (const s of await driver.list()) await driver.release(s).catch(() => {});
    await rm(sandboxDir, { recursive: true, force: true });
  });
  return {
    start(env = {}) {
      const child = spawn(process.execPath, [keel, "worker"], {
        env: { ...process.env, DATABASE_URL: f.url, KEEL_SANDBOX_DIR: sandboxDir, KEEL_LOG_LEVEL: "warn", KEEL_SWEEP_MS: "50", ...env },
        stdio: ["ignore", "inherit", "inherit"],
      });
      live.add(child);
      const exited = new Promise<NodeJS.Signals | number | null>((r) => child.on("exit", (code, signal) => (live.delete(child), r(signal ?? code))));
      return { child, exited };
    },
  };
}
