// Real worker processes, SIGKILLed at random moments and restarted, while messages keep coming.
// Proves: every run finishes, every session's seqs are gapless with no duplicates, each run's
// steps happened exactly once each, and no run ever executed in two workers at once.
import { afterAll, beforeAll, expect, test } from "vitest";
import { createPool, type Pool } from "../src/db/pool.js";
import { EngineClient } from "../src/engine/client.js";
import { readAllEvents } from "../src/engine/events.js";
import { Tenancy } from "../src/tenancy.js";
import { createTestDatabase, waitFor } from "@keel/test/db";
import { stepNumbers } from "./steps.js";
import { killLeftoverWorkers, spawnWorkerProcess, type WorkerProc } from "./processes.js";

const KILLS = Number(process.env.KEEL_CRASH_KILLS ?? 100);
const WORKERS = 4;
const STEPS = 4;
let pool: Pool;
let url: string;
let drop: () => Promise<void>;

beforeAll(async () => {
  const db = await createTestDatabase();
  url = db.url;
  drop = db.drop;
  pool = createPool(url);
  await pool.query(`CREATE TABLE crash_exec (id bigserial PRIMARY KEY, run_id uuid NOT NULL, pid int NOT NULL, epoch bigint NOT NULL,
                    started_at timestamptz NOT NULL, ended_at timestamptz)`);
});

afterAll(async () => {
  expect(killLeftoverWorkers()).toBe(0);
  await pool?.end();
  await drop?.();
});

const spawnWorker = () => spawnWorkerProcess({ CRASH_DB_URL: url, CRASH_STEPS: String(STEPS) });

test(`runs survive ${KILLS} SIGKILLs of real worker processes`, async () => {
  const tenancy = new Tenancy({ pool });
  const client = new EngineClient({ pool });
  const team = await tenancy.createTeam({ slug: "crash", name: "Crash" });
  const agent = await tenancy.createAgent(team.id, { name: "a", model: "demo" });
  const sessions = await Promise.all(Array.from({ length: 16 }, async () => (await tenancy.createSession(team.id, { agentId: agent.id })).id));

  const deaths = new Map<number, Date>(); // pid → when SIGKILL was sent to it
  const procs: WorkerProc[] = await Promise.all(Array.from({ length: WORKERS }, () => spawnWorker()));

  let producing = true;
  let posted = 0;
  const producer = (async () => {
    while (producing) {
      const sessionId = sessions[Math.floor(Math.random() * sessions.length)]!;
      await client.postMessage({ teamId: team.id, sessionId, content: `m${posted++}`, onBusy: "enqueue" });
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 40));
    }
  })();

  for (let kills = 0; kills < KILLS; kills++) {
    // Random moments: some kills land mid-step, some between steps, some while idle.
    await new Promise((r) => setTimeout(r, 30 + Math.random() * 200));
    const i = Math.floor(Math.random() * procs.length);
    const victim = procs[i]!;
    // The moment the signal is sent bounds the victim's death from below; the new owner can
    // only start after the death (its claim needs the victim's lock gone). Using when the exit
    // was *observed* instead gave false overlaps on a loaded machine (observation lags death).
    deaths.set(victim.child.pid!, new Date());
    victim.child.kill("SIGKILL");
    await victim.exited;
    procs[i] = await spawnWorker();
  }
  producing = false;
  await producer;

  await waitFor(
    async () => {
      const { rows } = await pool.query("SELECT count(*)::int AS n FROM runs WHERE status IN ('queued', 'running')");
      return rows[0].n === 0;
    },
    { timeoutMs: 120_000, what: "every run finished" },
  );
  // Graceful end: SIGTERM the survivors; each drains and exits 0.
  for (const p of procs) p.child.kill("SIGTERM");
  expect((await Promise.all(procs.map((p) => p.exited))).map((e) => e.code)).toEqual(procs.map(() => 0));

  const { rows: runs } = await pool.query<{ id: string; status: string; takeovers: number }>("SELECT id, status, takeovers FROM runs");
  expect(runs.length).toBeGreaterThan(20);
  expect(runs.filter((r) => r.status !== "succeeded")).toEqual([]);
  const takeovers = runs.reduce((n, r) => n + r.takeovers, 0);
  expect(takeovers).toBeGreaterThan(0); // kills did land on running runs

  let userMessages = 0;
  for (const sessionId of sessions) {
    const events = await readAllEvents(pool, sessionId);
    expect(events.map((e) => Number(e.seq))).toEqual(events.map((_, i) => i + 1));
    userMessages += events.filter((e) => e.type === "user_message").length;
    for (const runId of new Set(events.filter((e) => e.runId).map((e) => e.runId!))) {
      expect(stepNumbers(events, runId)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    }
  }
  expect(userMessages).toBe(posted);

  // No overlap: for each run, an execution under a newer claim never starts before the previous
  // claim's execution ended (or its worker was sent SIGKILL).
  const { rows: execs } = await pool.query<{ run_id: string; pid: number; epoch: bigint; started_at: Date; ended_at: Date | null }>(
    "SELECT run_id, pid, epoch, started_at, ended_at FROM crash_exec ORDER BY run_id, started_at",
  );
  const byRun = new Map<string, { epoch: bigint; start: number; end: number }[]>();
  for (const e of execs) {
    const end = e.ended_at ?? deaths.get(e.pid);
    expect(end, `execution of ${e.run_id} by pid ${e.pid} never ended and its worker never died`).toBeDefined();
    const list = byRun.get(e.run_id) ?? [];
    list.push({ epoch: BigInt(e.epoch), start: e.started_at.getTime(), end: end!.getTime() });
    byRun.set(e.run_id, list);
  }
  let overlaps = 0;
  for (const list of byRun.values()) {
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      if (cur.epoch !== prev.epoch && cur.start < prev.end) overlaps++;
    }
  }
  expect(overlaps).toBe(0);
  console.log(`crash test: ${KILLS} kills, ${posted} messages, ${runs.length} runs, ${takeovers} takeovers, ${execs.length} step executions`);
}, 600_000);
