import { describe, expect, test } from "vitest";
import { ConflictError, NotFoundError, PayloadTooLargeError } from "../src/errors.js";
import { appendEventFenced, readAllEvents } from "../src/engine/events.js";
import { claimRun, completeRun, failRun, retryRun, handBackRun } from "../src/engine/lifecycle.js";
import pg from "pg";
import { KEEL_LOCK_NAMESPACE, takeOverDeadRuns } from "../src/engine/takeover.js";
import { eventPayload, RUN_STATUSES, type ClaimedRun } from "../src/engine/types.js";
import { waitFor } from "@keel/test/db";
import { useFixture } from "./fixture.js";
import { abortableSleep, countingStep, stepNumbers, synthetic, syntheticEncoded } from "./steps.js";

const f = useFixture();

async function runStatus(runId: string): Promise<string> {
  return (await f.client.getRun({ teamId: f.teamId, runId })).status;
}
async function waitStatus(runId: string, status: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => (await runStatus(runId)) === status, { timeoutMs, what: `run ${runId} ${status}` });
}

describe("a turn", () => {
  test("posting appends the message and a worker runs it to completion, seqs gapless", async () => {
    await f.startWorker({ step: countingStep({ steps: 3 }) });
    const sessionId = await f.newSession();
    const posted = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hello" });
    expect(posted).toMatchObject({ seq: 1n, disposition: "started", duplicate: false });
    await waitStatus(posted.runId, "succeeded");
    const events = await readAllEvents(f.pool, sessionId);
    expect(events.map((e) => e.seq)).toEqual([1n, 2n, 3n, 4n]);
    expect(events[0]).toMatchObject({ type: "user_message", runId: posted.runId });
    expect(eventPayload(events[0]!)).toEqual({ role: "user", content: "hello" });
    expect(stepNumbers(events, posted.runId)).toEqual([1, 2, 3]);
  });

  test("payloads are stored verbatim, byte for byte", async () => {
    // A provider's item as it arrived: key order, spacing, number forms and escapes all kept.
    const text =
      '{"message": {"role": "assistant",   "content": "k\\u00e9ep \\"this\\"", "z": [1.50, 2e3], "sig":"AbC=="}, "model": "m", "finishReason": "stop", "usage": null}';
    await f.startWorker({
      step: async (ctx) => {
        await ctx.append({ type: "assistant_message", payloadText: text });
        return "done";
      },
    });
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "x" });
    await waitStatus(runId, "succeeded");
    const events = await f.client.readEvents({ teamId: f.teamId, sessionId, afterSeq: 1n });
    expect(events[0]!.payloadText).toBe(text);
  });

  test("an idempotency key makes a retried post a no-op that returns the first result", async () => {
    const sessionId = await f.newSession();
    const a = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "once", idempotencyKey: "k1" });
    const b = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "once", idempotencyKey: "k1" });
    expect(b).toMatchObject({ seq: a.seq, runId: a.runId, duplicate: true });
    expect((await readAllEvents(f.pool, sessionId)).length).toBe(1);
  });
});

describe("claims", () => {
  test("concurrent claimers never get the same run", async () => {
    const runIds = new Set<string>();
    for (let i = 0; i < 12; i++) runIds.add((await f.client.postMessage({ teamId: f.teamId, sessionId: await f.newSession(), content: `m${i}` })).runId);
    const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => claimRun(f.pool, `claimer-${i}`, 60_000)));
    const got = claims.filter((c) => c !== null).map((c) => c!.id);
    expect(got.length).toBe(12);
    expect(new Set(got)).toEqual(runIds);
    // Leave nothing running for the next tests' workers.
    for (const c of claims) if (c) await completeRun(f.pool, c);
  });

  test("N workers process many runs, each run executed by exactly one worker, one at a time per session", async () => {
    const executions = new Map<string, Set<string>>();
    const runningPerSession = new Map<string, number>();
    let overlap = 0;
    const step = countingStep({
      steps: 2,
      delayMs: 5,
      onStep: (ctx) => {
        const s = executions.get(ctx.run.id) ?? new Set();
        s.add(ctx.run.workerId);
        executions.set(ctx.run.id, s);
      },
    });
    const guarded: typeof step = async (ctx) => {
      const n = (runningPerSession.get(ctx.run.sessionId) ?? 0) + 1;
      runningPerSession.set(ctx.run.sessionId, n);
      if (n > 1) overlap++;
      try {
        return await step(ctx);
      } finally {
        runningPerSession.set(ctx.run.sessionId, (runningPerSession.get(ctx.run.sessionId) ?? 1) - 1);
      }
    };
    await Promise.all([1, 2, 3, 4].map(() => f.startWorker({ step: guarded, concurrency: 2 })));
    const sessions = await Promise.all(Array.from({ length: 10 }, () => f.newSession()));
    const runs: string[] = [];
    for (let round = 0; round < 4; round++) {
      for (const sessionId of sessions) runs.push((await f.client.postMessage({ teamId: f.teamId, sessionId, content: `r${round}` })).runId);
    }
    const unique = [...new Set(runs)];
    await waitFor(
      async () => {
        const { rows } = await f.pool.query("SELECT count(*)::int AS n FROM runs WHERE id = ANY($1) AND status = 'succeeded'", [unique]);
        return rows[0].n === unique.length;
      },
      { timeoutMs: 30_000, what: "all runs succeeded" },
    );
    expect(overlap).toBe(0);
    for (const id of unique) expect(executions.get(id)?.size).toBe(1);
    for (const sessionId of sessions) {
      const seqs = (await readAllEvents(f.pool, sessionId)).map((e) => Number(e.seq));
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
  });

  test("the database refuses a second running run in one session", async () => {
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "a" });
    await f.pool.query("UPDATE runs SET status = 'running' WHERE id = $1", [runId]);
    const { rows } = await f.pool.query("INSERT INTO runs (team_id, session_id) VALUES ($1, $2) RETURNING id", [f.teamId, sessionId]);
    await expect(f.pool.query("UPDATE runs SET status = 'running' WHERE id = $1", [rows[0].id])).rejects.toThrow(/runs_one_running_per_session/);
    await f.pool.query("UPDATE runs SET status = 'cancelled' WHERE session_id = $1", [sessionId]);
  });
});

describe("run states", () => {
  test("the database refuses a status outside the state diagram, and allows exactly RUN_STATUSES", async () => {
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "a" });
    await expect(f.pool.query("UPDATE runs SET status = 'paused' WHERE id = $1", [runId])).rejects.toThrow(/runs_status_check/);
    await expect(f.pool.query("INSERT INTO runs (team_id, session_id, status) VALUES ($1, $2, 'done')", [f.teamId, sessionId])).rejects.toThrow(
      /runs_status_check/,
    );
    const { rows } = await f.pool.query<{ def: string }>("SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'runs_status_check'");
    expect([...rows[0]!.def.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]).sort()).toEqual([...RUN_STATUSES].sort());
    expect(await runStatus(runId)).toBe("queued");
    await f.client.cancel({ teamId: f.teamId, sessionId });
  });
});

describe("fencing", () => {
  test("a worker that lost its claim cannot write: append, finish, retry and hand back are refused", async () => {
    const sessionId = await f.newSession();
    await f.client.postMessage({ teamId: f.teamId, sessionId, content: "a" });
    // The only worker here is "stale"; it is not registered, so the sweep sees its owner gone.
    const stale = (await claimRun(f.pool, "stale-worker", 60_000))!;
    expect(stale.sessionId).toBe(sessionId);
    const taken = await takeOverDeadRuns(f.pool, { maxTakeovers: 10 });
    expect(taken).toEqual([expect.objectContaining({ runId: stale.id, reason: "owner_gone", failed: false })]);
    const fresh = (await claimRun(f.pool, "fresh-worker", 60_000))!;
    expect(fresh.id).toBe(stale.id);
    expect(fresh.epoch).toBe(stale.epoch + 1n);

    const write = { runId: stale.id, epoch: stale.epoch, workerId: stale.workerId, ...syntheticEncoded("step", "{}") };
    expect(await appendEventFenced(f.pool, write)).toBeNull();
    expect(await completeRun(f.pool, stale)).toBe(false);
    expect(await failRun(f.pool, stale, { code: "step_failed", message: "late", attempts: 1 })).toBe(false);
    expect(await retryRun(f.pool, stale, 0, { code: "step_error", message: "late", attempt: 1 })).toBe(false);
    expect(await handBackRun(f.pool, stale)).toBe(false);
    // Same worker id but the old epoch: still refused.
    expect(await appendEventFenced(f.pool, { ...write, workerId: fresh.workerId })).toBeNull();

    expect(await appendEventFenced(f.pool, { runId: fresh.id, epoch: fresh.epoch, workerId: fresh.workerId, ...syntheticEncoded("step", "{}") })).toBe(2n);
    expect(await completeRun(f.pool, fresh)).toBe(true);
    expect((await readAllEvents(f.pool, sessionId)).map((e) => e.type)).toEqual(["user_message", "step"]);
  });

  test("a run a live worker claims while a sweep is deciding is not taken from it", async () => {
    const sessionId = await f.newSession();
    await f.client.postMessage({ teamId: f.teamId, sessionId, content: "a" });
    const dead = (await claimRun(f.pool, "dead-worker", 60_000))!; // never registered: its owner is gone
    // A live worker: registered, holding its liveness lock on its own connection.
    const lockConn = new pg.Client({ connectionString: f.url });
    await lockConn.connect();
    try {
      await lockConn.query("SELECT pg_advisory_lock($1, 424242)", [KEEL_LOCK_NAMESPACE]);
      await f.pool.query("INSERT INTO workers (id, lock_key, version, hostname, pid) VALUES ('live-worker', 424242, 't', 'h', 1)");
      // Sweeper A has just seen the run as dead; before it locks the row, sweeper B takes it
      // over and the live worker claims it.
      let live: ClaimedRun | null = null;
      const racing = new Proxy(f.pool, {
        get(target, prop) {
          const v = Reflect.get(target, prop) as unknown;
          if (prop !== "query") return typeof v === "function" ? v.bind(target) : v;
          return async (...args: Parameters<typeof f.pool.query>) => {
            const res = await (target.query as (...a: unknown[]) => Promise<unknown>)(...args);
            if (!live && (args[0] as { name?: string })?.name === "keel_dead_runs_probe") {
              expect(await takeOverDeadRuns(f.pool, { maxTakeovers: 10 })).toEqual([expect.objectContaining({ runId: dead.id })]);
              live = await claimRun(f.pool, "live-worker", 60_000);
            }
            return res;
          };
        },
      });
      expect(await takeOverDeadRuns(racing, { maxTakeovers: 10 })).toEqual([]);
      expect(live).toMatchObject({ id: dead.id, epoch: dead.epoch + 1n });
      const run = await f.client.getRun({ teamId: f.teamId, runId: dead.id });
      expect(run).toMatchObject({ status: "running", takeovers: 1 });
      // And once the live worker really dies, its run is taken over.
      await lockConn.query("SELECT pg_advisory_unlock_all()");
      expect(await takeOverDeadRuns(f.pool, { maxTakeovers: 10 })).toEqual([expect.objectContaining({ runId: dead.id, previousOwner: "live-worker" })]);
    } finally {
      await lockConn.end();
      await f.pool.query("DELETE FROM workers WHERE id = 'live-worker'");
    }
  });

  test("a hung worker's run is taken over when its lease expires, and its late writes are refused", async () => {
    let release!: () => void;
    const hung = new Promise<void>((r) => (release = r));
    let lateWrite: Promise<unknown> | undefined;
    // Heartbeats far apart so the 300 ms lease really lapses while this worker is alive and locked.
    await f.startWorker({
      leaseMs: 300,
      heartbeatMs: 60_000,
      step: async (ctx) => {
        await hung;
        lateWrite = ctx.append(synthetic("late", {})).catch((e: unknown) => e);
        return "done";
      },
    });
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "a" });
    await waitStatus(runId, "running");
    const other = await f.startWorker({ step: countingStep({ steps: 1 }) });
    await waitStatus(runId, "succeeded");
    const run = await f.client.getRun({ teamId: f.teamId, runId });
    expect(run.takeovers).toBe(1);
    expect(other).toBeDefined();
    release();
    await waitFor(() => lateWrite);
    expect(await lateWrite).toMatchObject({ code: "claim_lost" });
    expect((await readAllEvents(f.pool, sessionId)).map((e) => e.type)).toEqual(["user_message", "step"]);
  });
});

describe("double-texting", () => {
  test("reject: a message to a running session is refused with 409 and not stored", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await f.startWorker({ step: async () => (await gate, "done") });
    const sessionId = await f.newSession();
    const first = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "first" });
    await waitStatus(first.runId, "running");
    const err = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "second", onBusy: "reject" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ status: 409, code: "session_busy" });
    release();
    await waitStatus(first.runId, "succeeded");
    expect((await readAllEvents(f.pool, sessionId)).length).toBe(1);
  });

  test("enqueue: the message waits and the next run starts after the current one", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    await f.startWorker({
      step: async (ctx) => {
        seen.push(ctx.run.id);
        if (seen.length === 1) await gate;
        return "done";
      },
    });
    const sessionId = await f.newSession();
    const first = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "first" });
    await waitStatus(first.runId, "running");
    const second = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "second", onBusy: "enqueue" });
    const third = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "third", onBusy: "enqueue" });
    expect(second.disposition).toBe("queued");
    expect(third.runId).toBe(second.runId); // queued messages share the next run
    expect(await runStatus(second.runId)).toBe("queued");
    release();
    await waitStatus(second.runId, "succeeded");
    expect(seen).toEqual([first.runId, second.runId]);
  });

  test("interrupt: the running run stops at its next step boundary and a new run takes the message", async () => {
    const steps: string[] = [];
    let firstRunId = "";
    await f.startWorker({
      step: async (ctx) => {
        steps.push(ctx.run.id);
        if (ctx.run.id === firstRunId) {
          await abortableSleep(30, ctx.signal);
          await ctx.append(synthetic("step", {}));
          return "continue"; // would loop forever without the interrupt
        }
        return "done";
      },
    });
    const sessionId = await f.newSession();
    const first = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "long task" });
    firstRunId = first.runId;
    await waitStatus(first.runId, "running");
    const second = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "stop, do this instead", onBusy: "interrupt" });
    expect(second.disposition).toBe("interrupting");
    await waitStatus(second.runId, "succeeded");
    expect(await runStatus(first.runId)).toBe("interrupted");
    const types = (await readAllEvents(f.pool, sessionId)).map((e) => e.type);
    expect(types).toContain("run_interrupted");
    expect(types.indexOf("run_interrupted")).toBeGreaterThan(types.lastIndexOf("user_message"));
  });
});

describe("cancel and failure", () => {
  test("cancel stops a running run at the next step boundary and records it", async () => {
    await f.startWorker({ step: async (ctx) => (await abortableSleep(20, ctx.signal), await ctx.append(synthetic("step", {})), "continue") });
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "forever" });
    await waitFor(async () => (await readAllEvents(f.pool, sessionId)).length >= 3);
    const out = await f.client.cancel({ teamId: f.teamId, sessionId });
    // Usually "stopping" (running); "cancelled" if it was between steps back in the queue (a
    // retry or a takeover on a loaded machine). Either way it ends cancelled with its event.
    expect([...out.stopping, ...out.cancelled]).toEqual([runId]);
    await waitStatus(runId, "cancelled");
    const events = await readAllEvents(f.pool, sessionId);
    expect(events.at(-1)).toMatchObject({ type: "run_cancelled", runId });
    const n = events.length;
    await new Promise((r) => setTimeout(r, 100)); // nothing more is written after the cancel
    expect((await readAllEvents(f.pool, sessionId)).length).toBe(n);
  });

  test("cancel of a queued run is immediate", async () => {
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "never runs" });
    expect(await f.client.cancel({ teamId: f.teamId, sessionId })).toEqual({ cancelled: [runId], stopping: [] });
    expect(await runStatus(runId)).toBe("cancelled");
  });

  test("deleting a session ends its runs as cancel does: queued, parked and running, each with run_cancelled", async () => {
    const busy = new Set<string>();
    // Runs of `busy` sessions keep stepping; every other run parks for approval.
    await f.startWorker({
      step: async (ctx) => {
        if (!busy.has(ctx.run.sessionId)) return "waiting_approval";
        await abortableSleep(20, ctx.signal);
        await ctx.append(synthetic("step", {}));
        return "continue";
      },
    });
    const parkedSession = await f.newSession();
    const parked = (await f.client.postMessage({ teamId: f.teamId, sessionId: parkedSession, content: "park" })).runId;
    await waitStatus(parked, "waiting_approval");
    const queued = (await f.client.postMessage({ teamId: f.teamId, sessionId: parkedSession, content: "behind it" })).runId;
    expect(queued).not.toBe(parked);
    const runningSession = await f.newSession();
    busy.add(runningSession);
    const running = (await f.client.postMessage({ teamId: f.teamId, sessionId: runningSession, content: "forever" })).runId;
    await waitFor(async () => (await readAllEvents(f.pool, runningSession)).some((e) => e.type === "step"));

    await f.tenancy.deleteSession(f.teamId, parkedSession);
    await f.tenancy.deleteSession(f.teamId, runningSession);
    const { rows } = await f.pool.query<{ id: string; status: string }>("SELECT id, status FROM runs WHERE id = ANY($1::uuid[])", [[parked, queued]]);
    expect(rows.map((r) => r.status)).toEqual(["cancelled", "cancelled"]);
    await waitFor(async () => (await f.pool.query("SELECT 1 FROM runs WHERE id = $1 AND status = 'cancelled'", [running])).rowCount === 1, {
      what: "running run cancelled",
    });
    const closing = async (sessionId: string) => (await readAllEvents(f.pool, sessionId)).filter((e) => e.type === "run_cancelled").map((e) => e.runId);
    expect((await closing(parkedSession)).sort()).toEqual([parked, queued].sort());
    expect(await closing(runningSession)).toEqual([running]);
  });

  test("a run that keeps failing ends failed with its reason after max attempts", async () => {
    let calls = 0;
    await f.startWorker({
      step: async () => {
        calls++;
        throw new Error("model provider said no");
      },
    });
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "x" });
    await waitStatus(runId, "failed");
    const run = await f.client.getRun({ teamId: f.teamId, runId });
    expect(calls).toBe(3);
    expect(run.attempt).toBe(2); // two retries were scheduled; the third failure ended it
    const last = (await readAllEvents(f.pool, sessionId)).at(-1)!;
    expect(last.type).toBe("run_failed");
    expect(eventPayload(last)).toMatchObject({ code: "step_error", message: "model provider said no", attempts: 3 });
    expect(run.lastError).toMatchObject({ message: "model provider said no" });
  });
});

describe("bad input", () => {
  test("unknown, malformed, deleted and foreign sessions are all NotFound; oversized payloads 413; workers unaffected", async () => {
    await f.startWorker({ step: countingStep({ steps: 1 }) });
    const missing = "00000000-0000-4000-8000-000000000000";
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId: missing, content: "x" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId: "not-a-uuid", content: "x" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(f.client.readEvents({ teamId: f.teamId, sessionId: "'; DROP TABLE runs; --" })).rejects.toBeInstanceOf(NotFoundError);

    const deleted = await f.newSession();
    await f.tenancy.deleteSession(f.teamId, deleted);
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId: deleted, content: "x" })).rejects.toMatchObject({ status: 404 });

    const other = await f.tenancy.createTeam({ slug: `other-${Date.now()}`, name: "Other" });
    const otherAgent = await f.tenancy.createAgent(other.id, { name: "a", model: "demo" });
    const foreign = (await f.tenancy.createSession(other.id, { agentId: otherAgent.id })).id;
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId: foreign, content: "x" })).rejects.toBeInstanceOf(NotFoundError);

    const sessionId = await f.newSession();
    const big = "x".repeat(1024 * 1024 + 1);
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId, content: big })).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId, content: "" })).rejects.toMatchObject({ status: 422 });
    await expect(f.client.postMessage({ teamId: f.teamId, sessionId, content: "a", onBusy: "sometimes" as never })).rejects.toMatchObject({ status: 422 });
    expect((await readAllEvents(f.pool, sessionId)).length).toBe(0);

    const ok = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "still works" });
    await waitStatus(ok.runId, "succeeded");
  });

  test("a step that appends an oversized or invalid event fails that attempt visibly, not the worker", async () => {
    await f.startWorker({
      step: async (ctx) => {
        await ctx.append({
          type: "tool_result",
          payload: { tool_call_id: "c1", name: "echo", content: "y".repeat(2 * 1024 * 1024), isError: false, state: "succeeded" },
        });
        return "done";
      },
    });
    const sessionId = await f.newSession();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "x" });
    await waitStatus(runId, "failed");
    const last = (await readAllEvents(f.pool, sessionId)).at(-1)!;
    expect(last.type).toBe("run_failed");
    expect(eventPayload<{ message: string }>(last).message).toMatch(/limit is 1048576/);
  });
});
