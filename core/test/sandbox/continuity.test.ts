// Continuity of local sandboxes across worker deaths and runtime deaths, with real processes:
// reattach, restart from the persisted workspace, idempotent exec, stale epochs, lifecycle
// states in Postgres, and the reaper.
import { fork } from "node:child_process";
import path from "node:path";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { bundleForNode } from "../support/bundle.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useFixture } from "../fixture.js";
import { waitFor } from "@keel/test/db";
import { liveSessionIds, SandboxStore } from "../../src/sandbox/store.js";
import { reapSandboxes } from "../../src/sandbox/reaper.js";
import { policy, useSandboxEnv } from "./helpers.js";

const f = useFixture();
const env = useSandboxEnv();
let store: SandboxStore;

beforeAll(async () => {
  store = new SandboxStore(f.pool);
});

// Inside the repo, so its bare imports (pino, pg) resolve from node_modules.
const bundle = path.resolve(import.meta.dirname, `../../../.tmp/sandbox-worker-child-${process.pid}.mjs`);
afterAll(() => rmSync(bundle, { force: true }));

async function runWorkerChild(sessionId: string): Promise<{ sandboxId: string; kill: () => Promise<void> }> {
  if (!existsSync(bundle)) await bundleForNode(path.join(import.meta.dirname, "worker-child.ts"), bundle);
  const child = fork(bundle, [env.baseDir, env.runtimeScript, f.teamId, sessionId], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const msg = await new Promise<{ sandboxId: string }>((resolve, reject) => {
    child.once("message", (m) => resolve(m as { sandboxId: string }));
    child.once("exit", (code) => reject(new Error(`worker child exited early (${code})`)));
  });
  return { sandboxId: msg.sandboxId, kill: async () => void (child.kill("SIGKILL"), await exited) };
}

async function worker1Health(d: ReturnType<typeof env.driver>, h: Awaited<ReturnType<ReturnType<typeof env.driver>["acquire"]>>): Promise<"up" | "down"> {
  return d.exec(h, { command: "true" }).then(
    () => "up" as const,
    () => "down" as const,
  );
}

describe("local sandbox continuity", () => {
  it("outlives a SIGKILLed worker: the next worker reattaches to the same running sandbox", async () => {
    const sessionId = await f.newSession();
    const worker1 = await runWorkerChild(sessionId);
    const before = await env.record(f.teamId, sessionId);
    await worker1.kill();
    const worker2 = env.driver({ store });
    const h = await worker2.acquire(sessionId, f.teamId, policy());
    expect(h.sandboxId).toBe(worker1.sandboxId);
    // Reattached, not restarted: the same sandbox process, and the command worker 1 started
    // finished on its own.
    expect((await env.record(f.teamId, sessionId)).childPid).toBe(before.childPid);
    expect((await worker2.readFile(h, "continuity.txt")).content).toBe("written by worker 1");
    await waitFor(async () => (await worker2.listFiles(h, ".")).entries.some((e) => e.path === "background.txt"), { what: "background command" });
    // Re-sending the dead worker's call returns its result instead of running it again.
    const resent = await worker2.exec(h, { command: "sleep 2; echo finished > background.txt", idempotencyKey: "bg-1" });
    expect(resent).toMatchObject({ exitCode: 0, replayed: true });
  });

  it("restarts a SIGKILLed runtime from the persisted workspace, in a new driver instance", async () => {
    const sessionId = await f.newSession();
    const d1 = env.driver({ store });
    const h1 = await d1.acquire(sessionId, f.teamId, policy());
    await d1.writeFile(h1, "notes/plan.md", "step 1: survive");
    const counted = { command: "echo run >> runs.log; wc -l < runs.log", idempotencyKey: "call-42" };
    expect((await d1.exec(h1, counted)).stdout).toBe("1\n");
    await d1.exec(h1, { command: "true", epoch: 7n, fenceKey: "run-1" });
    const { childPid } = await env.record(f.teamId, sessionId);
    process.kill(childPid, "SIGKILL");
    await waitFor(async () => (await worker1Health(d1, h1)) === "down", { what: "the killed runtime to stop answering" });

    const d2 = env.driver({ store });
    const h2 = await d2.acquire(sessionId, f.teamId, policy());
    expect(h2.sandboxId).toBe(h1.sandboxId);
    expect((await env.record(f.teamId, sessionId)).childPid).not.toBe(childPid);
    expect((await d2.readFile(h2, "notes/plan.md")).content).toBe("step 1: survive");
    // The repeated key is answered from the record on disk: the command does not run again.
    expect(await d2.exec(h2, counted)).toMatchObject({ stdout: "1\n", replayed: true });
    expect((await d2.readFile(h2, "runs.log")).content).toBe("run\n");
    // A worker still holding an older epoch of the run is refused, also after the restart.
    await expect(d2.exec(h2, { command: "touch stale", epoch: 6n, fenceKey: "run-1" })).rejects.toMatchObject({ status: 409, code: "stale_epoch" });
    await expect(d2.writeFile(h2, "stale.txt", "x", { epoch: 6n, fenceKey: "run-1" })).rejects.toThrow(/lost its claim/);
    expect(await d2.exec(h2, { command: "echo ok", epoch: 8n, fenceKey: "run-1" })).toMatchObject({ stdout: "ok\n" });
    expect(await store.findLive(f.teamId, sessionId)).toMatchObject({ id: h1.sandboxId, state: "ready", driver: "local" });
  });

  it("suspends idle sandboxes, terminates expired and orphaned ones (reaper), and records states", async () => {
    const d = env.driver({ store });
    const idle = await d.acquire(await f.newSession(), f.teamId, policy({ idleTimeoutMs: 60_000 }));
    await d.writeFile(idle, "keep.txt", "kept across suspend");
    const expired = await d.acquire(await f.newSession(), f.teamId, policy({ ttlMs: 60_000 }));
    const orphanSession = await f.newSession();
    const orphan = await d.acquire(orphanSession, f.teamId, policy());
    await f.pool.query("UPDATE sessions SET status = 'archived' WHERE id = $1", [orphanSession]);
    const busy = await d.acquire(await f.newSession(), f.teamId, policy({ idleTimeoutMs: 60_000 }));
    const running = d.exec(busy, { command: "sleep 1.5" });
    running.catch(() => {});
    await new Promise((r) => setTimeout(r, 100));

    const r = await reapSandboxes({ driver: d, liveSessions: (ids) => liveSessionIds(f.pool, ids), now: () => Date.now() + 90_000 });
    expect(r.suspended).toEqual([idle.sandboxId]);
    expect(r.terminated).toEqual([expired.sandboxId]);
    expect(r.orphaned).toEqual([orphan.sandboxId]);
    expect(r.errors).toEqual([]);
    await running;
    expect((await store.get(f.teamId, idle.sandboxId))?.state).toBe("suspended");
    expect((await store.get(f.teamId, expired.sandboxId))?.state).toBe("terminated");
    expect((await store.get(f.teamId, orphan.sandboxId))?.terminatedAt).toBeInstanceOf(Date);
    expect(existsSync(path.join(env.baseDir, f.teamId, orphanSession))).toBe(false);
    // A suspended sandbox comes back on the next acquire with its files.
    await expect(d.readFile(idle, "keep.txt")).rejects.toThrow(/suspended/);
    const back = await d.acquire(idle.sessionId, f.teamId, policy());
    expect(back.sandboxId).toBe(idle.sandboxId);
    expect((await d.readFile(back, "keep.txt")).content).toBe("kept across suspend");
    // A terminated one is replaced by a new, empty sandbox.
    const fresh = await d.acquire(expired.sessionId, f.teamId, policy());
    expect(fresh.sandboxId).not.toBe(expired.sandboxId);
    expect((await store.listByTeam(f.teamId)).filter((s) => s.sessionId === expired.sessionId)).toHaveLength(1);
  });

  it("refuses to run without bubblewrap unless the operator allows unsandboxed execution", async () => {
    const missing = env.driver({ bwrapPath: "/nonexistent/bwrap" });
    expect(await missing.health()).toMatchObject({ ok: false, message: expect.stringMatching(/not found.*apt-get install -y bubblewrap/) });
    await expect(missing.acquire(await f.newSession(), f.teamId, policy())).rejects.toThrow(/bubblewrap is unavailable.*allowUnsandboxed/);
    const optIn = env.driver({ bwrapPath: "/nonexistent/bwrap", allowUnsandboxed: true });
    // The worker's environment (its database URL, secrets key, model key) must not reach the
    // runtime: unsandboxed, no PID namespace hides the runtime's /proc/PID/environ from commands
    // running as its uid.
    process.env.KEEL_TEST_WORKER_SECRET = "worker-secret-0b6c1f";
    let h;
    try {
      h = await optIn.acquire(await f.newSession(), f.teamId, policy());
    } finally {
      delete process.env.KEEL_TEST_WORKER_SECRET;
    }
    expect((await optIn.exec(h, { command: "echo unsandboxed" })).stdout).toBe("unsandboxed\n");
    const { childPid } = await env.record(f.teamId, h.sessionId);
    const environ = readFileSync(`/proc/${childPid}/environ`, "utf8").split("\0").filter(Boolean);
    // LAUNCH_ENV, plus at most what the launching bash sets itself (PWD, SHLVL, _).
    expect(environ).toEqual(expect.arrayContaining(["LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"]));
    expect(environ.map((v) => v.slice(0, v.indexOf("="))).filter((n) => !["LANG", "PATH", "PWD", "SHLVL", "_"].includes(n))).toEqual([]);
    const seen = await optIn.exec(h, { command: `tr '\\0' '\\n' < /proc/${childPid}/environ; echo; env` });
    expect(seen.stdout).not.toContain("worker-secret-0b6c1f");
    await optIn.release(h);
  });
});
