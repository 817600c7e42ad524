// Graceful shutdown and database outages, with real worker processes and a real server.
import pg from "pg";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { readAllEvents } from "../src/engine/events.js";
import { adminUrl, waitFor } from "@keel/test/db";
import { useFixture } from "./fixture.js";
import { killLeftoverWorkers, spawnWorkerProcess } from "./processes.js";
import { countingStep, stepNumbers } from "./steps.js";

const f = useFixture();
beforeAll(async () => {
  await f.pool.query(`CREATE TABLE crash_exec (id bigserial PRIMARY KEY, run_id uuid NOT NULL, pid int NOT NULL, epoch bigint NOT NULL,
                      started_at timestamptz NOT NULL, ended_at timestamptz)`);
});
afterEach(() => {
  expect(killLeftoverWorkers()).toBe(0);
});

async function run(runId: string) {
  return f.client.getRun({ teamId: f.teamId, runId });
}

test("SIGTERM: the worker finishes its current step, hands the run back, exits 0; another worker continues", async () => {
  const w = await spawnWorkerProcess({ CRASH_DB_URL: f.url, CRASH_STEPS: "4", CRASH_STEP_DELAY_MS: "400", CRASH_DRAIN_MS: "5000" });
  const sessionId = await f.newSession();
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "x" });
  // Wait until it is inside a step (crash_exec row open), then ask it to stop.
  await waitFor(async () => (await f.pool.query("SELECT 1 FROM crash_exec WHERE run_id = $1 AND ended_at IS NULL", [runId])).rowCount);
  w.child.kill("SIGTERM");
  const exit = await w.exited;
  expect(exit.code).toBe(0);
  const r = await run(runId);
  expect(r).toMatchObject({ status: "queued", attempt: 0, leaseOwner: null });
  const before = stepNumbers(await readAllEvents(f.pool, sessionId), runId);
  expect(before.length).toBeGreaterThanOrEqual(1); // the step in flight was finished and kept
  expect(before.length).toBeLessThan(4);

  await f.startWorker({ step: countingStep({ steps: 4 }) });
  await waitFor(async () => (await run(runId)).status === "succeeded");
  expect(stepNumbers(await readAllEvents(f.pool, sessionId), runId)).toEqual([1, 2, 3, 4]);
});

test("SIGTERM during a step longer than the drain time: the step is aborted and the run handed back in time", async () => {
  const w = await spawnWorkerProcess({ CRASH_DB_URL: f.url, CRASH_STEPS: "2", CRASH_STEP_DELAY_MS: "60000", CRASH_DRAIN_MS: "300" });
  const sessionId = await f.newSession();
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "x" });
  await waitFor(async () => (await f.pool.query("SELECT 1 FROM crash_exec WHERE run_id = $1", [runId])).rowCount);
  const sentAt = Date.now();
  w.child.kill("SIGTERM");
  const exit = await w.exited;
  expect(exit.code).toBe(0);
  // Bounded: drain (0.3 s) plus bookkeeping, far below the 60 s step. Generous bound; not a benchmark.
  expect(exit.at.getTime() - sentAt).toBeLessThan(20_000);
  expect(await run(runId)).toMatchObject({ status: "queued", attempt: 0 });
  expect(stepNumbers(await readAllEvents(f.pool, sessionId), runId)).toEqual([]);
});

test("database briefly unreachable: workers reconnect and continue, no event lost or doubled", async () => {
  await f.startWorker({ step: countingStep({ steps: 30, delayMs: 20 }) });
  await f.startWorker({ step: countingStep({ steps: 30, delayMs: 20 }) });
  const sessionId = await f.newSession();
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "x" });
  await waitFor(async () => stepNumbers(await readAllEvents(f.pool, sessionId), runId).length >= 3);

  // Cut the database off: refuse new connections and kill every existing one, for a second.
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  const dbName = new URL(f.url).pathname.slice(1);
  await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName]);
  await new Promise((r) => setTimeout(r, 1_000)); // the outage itself: a duration, not a wait for a condition
  await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
  await admin.end();

  await waitFor(async () => (await run(runId)).status === "succeeded", { timeoutMs: 30_000 });
  const events = await readAllEvents(f.pool, sessionId);
  expect(stepNumbers(events, runId)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  expect(events.map((e) => Number(e.seq))).toEqual(events.map((_, i) => i + 1));
  // And new work still flows afterwards.
  const next = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "after the outage" });
  await waitFor(async () => (await run(next.runId)).status === "succeeded", { timeoutMs: 30_000 });
});

afterAll(() => {});
