// Concurrent cancel / claim / hand-back / approve / delete / post against the worker's fenced
// writes, on real Postgres: one lock order (session row, then its runs), so nothing deadlocks and
// no client call fails with anything but a typed error (issue 13, item 2: a cancel during a
// provider retry loop answered 500 "deadlock detected").
import { describe, expect, test } from "vitest";
import { KeelError } from "../src/errors.js";
import { pgCode } from "../src/db/pool.js";
import { appendEvent, encodeEvent, readAllEvents } from "../src/engine/events.js";
import { withFence } from "../src/engine/fence.js";
import { cancelRun, claimRun, failRun, handBackRun, retryRun } from "../src/engine/lifecycle.js";
import { syntheticEncoded } from "./steps.js";
import { takeOverDeadRuns } from "../src/engine/takeover.js";
import { TERMINAL_RUN_STATUSES, type ClaimedRun } from "../src/engine/types.js";
import { waitFor } from "@keel/test/db";
import { useFixture } from "./fixture.js";
import { countingStep } from "./steps.js";

const f = useFixture();

/** Resolves once `n` backends of this database wait for a row lock (the race is set up). */
async function lockWaiters(n: number): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await f.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      return rows[0]!.n >= n;
    },
    { timeoutMs: 10_000, what: `${n} lock waiter(s)` },
  );
}

async function claimed(): Promise<{ sessionId: string; run: ClaimedRun }> {
  const sessionId = await f.newSession();
  await f.client.postMessage({ teamId: f.teamId, sessionId, content: "race" });
  const run = await claimRun(f.pool, `racer-${sessionId.slice(0, 8)}`, 60_000);
  expect(run?.sessionId).toBe(sessionId);
  return { sessionId, run: run! };
}

/** Holds a fenced transaction open between its fence and its append while `client` runs. */
async function raceFencedAppend(client: (sessionId: string) => Promise<unknown>) {
  const { sessionId, run } = await claimed();
  let clientCall: Promise<unknown> = Promise.resolve();
  const worker = withFence(f.pool, run, async (c) => {
    clientCall = client(sessionId).then(
      () => "ok",
      (e: unknown) => e,
    );
    await lockWaiters(1); // the client call now waits on a lock this transaction holds
    return appendEvent(c, { sessionId, runId: run.id, ...syntheticEncoded("step", "{}") });
  }).then(
    () => "ok",
    (e: unknown) => e,
  );
  const [w, cl] = [await worker, await clientCall];
  return { sessionId, run, worker: w, client: cl };
}

describe("one lock order", () => {
  test("a cancel while the worker is inside a fenced write waits for it instead of deadlocking", async () => {
    const r = await raceFencedAppend((sessionId) => f.client.cancel({ teamId: f.teamId, sessionId }));
    expect([pgCode(r.worker), pgCode(r.client)]).not.toContain("40P01");
    expect(r.worker).toBe("ok");
    expect(r.client).toBe("ok");
    // The worker sees the cancel at its next boundary; finishing records it once.
    expect(await cancelRun(f.pool, r.run)).toBe(true);
    expect((await readAllEvents(f.pool, r.sessionId)).map((e) => e.type)).toEqual(["user_message", "step", "run_cancelled"]);
  });

  test("a post with onBusy=interrupt and a session delete race the same way", async () => {
    const post = await raceFencedAppend((sessionId) => f.client.postMessage({ teamId: f.teamId, sessionId, content: "stop", onBusy: "interrupt" }));
    expect([post.worker, post.client]).toEqual(["ok", "ok"]);
    const del = await raceFencedAppend((sessionId) => f.tenancy.deleteSession(f.teamId, sessionId));
    expect([del.worker, del.client]).toEqual(["ok", "ok"]);
  });

  test("retry and finish (fenced, with their events) against cancels: no deadlock", async () => {
    for (const end of ["retry", "finish"] as const) {
      const { sessionId, run } = await claimed();
      // A cancel that holds the session and waits for the run's row, while the worker ends the run.
      const c = await f.pool.connect();
      try {
        await c.query("BEGIN");
        await c.query("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", [sessionId]);
        const ending = (
          end === "retry"
            ? retryRun(f.pool, run, 60_000, { code: "model_unavailable", message: "x", attempt: 1 })
            : failRun(f.pool, run, { code: "step_failed", message: "x", attempts: 1 })
        ).then(
          (ok) => ok,
          (e: unknown) => e,
        );
        await lockWaiters(1);
        await c.query("UPDATE runs SET cancel_requested = true WHERE session_id = $1", [sessionId]);
        await c.query("COMMIT");
        expect(await ending).toBe(true);
      } finally {
        c.release();
      }
    }
  });

  test("a takeover that fails a run waits for a session a client holds (and takes it over next sweep)", async () => {
    const { sessionId, run } = await claimed();
    await f.pool.query("UPDATE runs SET takeovers = 9 WHERE id = $1", [run.id]); // the next takeover fails it
    const c = await f.pool.connect();
    try {
      await c.query("BEGIN");
      await c.query("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", [sessionId]);
      expect(await takeOverDeadRuns(f.pool, { maxTakeovers: 10 })).toEqual([]); // busy session: skipped
      await c.query("COMMIT");
    } finally {
      c.release();
    }
    expect(await takeOverDeadRuns(f.pool, { maxTakeovers: 10 })).toEqual([expect.objectContaining({ runId: run.id, failed: true })]);
    expect(await handBackRun(f.pool, run)).toBe(false);
  });
});

describe("the backstop", () => {
  test("a client call chosen as a deadlock victim runs again instead of failing (the 500 of issue 13)", async () => {
    const { sessionId, run } = await claimed();
    // A writer that takes the locks in the wrong order: the run first, then its session.
    const c = await f.pool.connect();
    try {
      await c.query("BEGIN");
      // Postgres rolls back the backend whose deadlock check fires first, one deadlock_timeout
      // after it began to wait; under load that was sometimes this connection. Checking late here
      // makes the cancel (1 s default) the victim every time.
      await c.query("SET LOCAL deadlock_timeout = '30s'");
      await c.query("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", [run.id]);
      const cancel = f.client.cancel({ teamId: f.teamId, sessionId }).then(
        (r) => r,
        (e: unknown) => e,
      );
      await lockWaiters(1); // the cancel holds the session and waits for the run
      // Closing the cycle: the cancel's deadlock check fires first, so Postgres rolls it back.
      await c.query("UPDATE sessions SET updated_at = now() WHERE id = $1", [sessionId]);
      await c.query("COMMIT");
      expect(await cancel).toEqual({ cancelled: [], stopping: [run.id] });
    } finally {
      c.release();
    }
  });
});

describe("everything at once", () => {
  test("workers stepping and handing back while clients post, cancel, interrupt and delete: no deadlock, no 500", async () => {
    const step = countingStep({ steps: 4 });
    const workers = await Promise.all([1, 2, 3].map(() => f.startWorker({ step, concurrency: 3 })));
    const sessions = await Promise.all(Array.from({ length: 12 }, () => f.newSession()));
    const failures: unknown[] = [];
    const guard = (p: Promise<unknown>) =>
      p.catch((e: unknown) => {
        // NotFound (a deleted session) and Conflict are answers; anything else is a bug.
        if (!(e instanceof KeelError) || e.status >= 500) failures.push(e);
      });
    for (let round = 0; round < 6; round++) {
      await Promise.all(
        sessions.flatMap((sessionId, i) => [
          guard(f.client.postMessage({ teamId: f.teamId, sessionId, content: `m${round}`, onBusy: round % 2 ? "interrupt" : "enqueue" })),
          guard(f.client.cancel({ teamId: f.teamId, sessionId })),
          guard(f.client.postMessage({ teamId: f.teamId, sessionId, content: `n${round}` })),
          ...(round === 4 && i % 3 === 0 ? [guard(f.tenancy.deleteSession(f.teamId, sessionId))] : []),
        ]),
      );
      if (round === 2) await workers[0]!.stop({ drainMs: 200 }); // hands its runs back mid-race
    }
    expect(failures.map((e) => `${pgCode(e) ?? ""} ${(e as Error).message}`)).toEqual([]);
    await waitFor(
      async () => {
        const { rows } = await f.pool.query<{ status: string }>("SELECT status FROM runs WHERE session_id = ANY($1::uuid[])", [sessions]);
        return rows.every((r) => (TERMINAL_RUN_STATUSES as readonly string[]).includes(r.status));
      },
      { timeoutMs: 30_000, what: "every run to end" },
    );
  });
});
