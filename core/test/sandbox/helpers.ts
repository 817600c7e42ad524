// Shared set-up for sandbox tests: the runtime bundled once per file, a base dir per file, real
// bubblewrap (a missing bwrap fails the tests loudly: these tests are the isolation proof), and
// after all tests: every sandbox released and no sandbox process left behind.
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { LocalSandboxDriver, type LocalDriverOptions } from "../../src/sandbox/local-driver.js";
import { buildRuntime } from "@keel/sandbox/build";
import { parseSandboxPolicy, type SandboxPolicy, type SandboxPolicyInput } from "../../src/sandbox/policy.js";

export type SandboxEnv = {
  baseDir: string;
  runtimeScript: string;
  driver(opts?: Partial<LocalDriverOptions>): LocalSandboxDriver;
  /** Host pids of every process running the runtime under this baseDir. */
  runtimeProcesses(): Promise<number[]>;
  /** The local driver's on-disk record of a sandbox. */
  record(teamId: string, sessionId: string): Promise<{ sandboxId: string; state: string; childPid: number; pid: number }>;
};

export function policy(input: SandboxPolicyInput = {}): SandboxPolicy {
  return parseSandboxPolicy(input);
}

export function requireBwrap(): void {
  const r = spawnSync("bwrap", ["--version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("bubblewrap (bwrap) is required for the sandbox tests: apt-get install -y bubblewrap");
}

export function useSandboxEnv(): SandboxEnv {
  const env = {} as SandboxEnv;
  beforeAll(async () => {
    requireBwrap();
    const tmp = await mkdtemp(path.join(os.tmpdir(), "keel-sbx-"));
    // The sandbox's unprivileged host uid must be able to traverse to its own directory.
    await chmod(tmp, 0o711);
    env.baseDir = path.join(tmp, "sandboxes");
    env.runtimeScript = await buildRuntime(path.join(tmp, "runtime", "runtime.mjs"));
    env.driver = (opts = {}) => new LocalSandboxDriver({ baseDir: env.baseDir, runtimeScript: env.runtimeScript, ...opts });
    env.runtimeProcesses = async () => {
      // No host path is in any sandbox process's cmdline (bwrap gets its arguments on a pipe):
      // bwrap runs in its sandbox's dir, and everything inside descends from it.
      const parent = new Map<number, number>();
      const pids: number[] = [];
      for (const p of await readdir("/proc")) {
        if (!/^\d+$/.test(p)) continue;
        const stat = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
        parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
        if ((await readlink(`/proc/${p}/cwd`).catch(() => "")).startsWith(`${env.baseDir}/`)) pids.push(Number(p));
      }
      for (let grew = true; grew;) {
        grew = false;
        for (const [pid, ppid] of parent) if (pids.includes(ppid) && !pids.includes(pid)) (pids.push(pid), (grew = true));
      }
      return pids;
    };
    env.record = async (teamId, sessionId) => JSON.parse(await readFile(path.join(env.baseDir, teamId, sessionId, "sandbox.json"), "utf8"));
  });
  afterAll(async () => {
    if (!env.baseDir) return;
    const d = env.driver();
    for (const s of await d.list()) await d.release(s);
    const left = await env.runtimeProcesses();
    await rm(path.dirname(env.baseDir), { recursive: true, force: true });
    if (left.length > 0) {
      for (const pid of left) process.kill(pid, "SIGKILL");
      throw new Error(`sandbox processes left behind: ${left.join(", ")}`);
    }
  });
  return env;
}
