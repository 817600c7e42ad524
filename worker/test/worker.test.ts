// `keel worker` as shipped: the agent loop with the demo model and sandbox tools, in real
// processes. A file written in turn 1 is read in turn 3 after the worker was SIGKILLed between.
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { eventPayload, LocalSandboxDriver, readAllEvents, SandboxStore } from "@keel/core";
import { waitFor } from "../../test/db.js";
import { useFixture } from "../../core/test/fixture.js";

const f = useFixture();
const keel = path.resolve(import.meta.dirname, "../../cli/bin/keel.mjs");
const runtimeScript = path.resolve(import.meta.dirname, "../../sandbox/dist/runtime.mjs");
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

function startWorker(): { child: ChildProcess; exited: Promise<NodeJS.Signals | number | null> } {
  const child = spawn(process.execPath, [keel, "worker"], {
    env: { ...process.env, DATABASE_URL: f.url, KEEL_SANDBOX_DIR: sandboxDir, KEEL_LOG_LEVEL: "warn", KEEL_SWEEP_MS: "50" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  live.add(child);
  const exited = new Promise<NodeJS.Signals | number | null>((r) => child.on("exit", (code, signal) => (live.delete(child), r(signal ?? code))));
  return { child, exited };
}

async function turn(sessionId: string, content: string): Promise<{ content: string; isError: boolean } | undefined> {
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content });
  await waitFor(async () => (await f.client.getRun({ teamId: f.teamId, runId })).status === "succeeded", { timeoutMs: 60_000, what: content });
  const events = await readAllEvents(f.pool, sessionId);
  const result = events.filter((e) => e.type === "tool_result" && e.runId === runId).at(-1);
  return result ? eventPayload<{ content: string; isError: boolean }>(result) : undefined;
}

test("files in the session's sandbox survive a SIGKILLed worker; turn 3 reads what turn 1 wrote", async () => {
  const agent = await f.tenancy.createAgent(f.teamId, { name: "builder", model: "demo", tools: ["exec", "read_file"] });
  const sessionId = (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;

  const first = startWorker();
  const wrote = await turn(sessionId, "run echo kept-across-crashes > notes.txt && echo done");
  expect(wrote).toMatchObject({ isError: false });
  expect(wrote!.content).toContain("done");
  first.child.kill("SIGKILL");
  expect(await first.exited).toBe("SIGKILL");

  const second = startWorker();
  await turn(sessionId, "hello again");
  const read = await turn(sessionId, "run cat notes.txt");
  expect(read!.content).toContain("kept-across-crashes");
  // Isolation holds for the shipped worker too: no network by default.
  const net = await turn(sessionId, "run getent hosts example.com || echo no-network");
  expect(net!.content).toContain("no-network");
  second.child.kill("SIGTERM");
  expect(await second.exited).toBe(0);
}, 180_000);
