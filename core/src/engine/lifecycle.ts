// The run lifecycle: the only module that writes `runs.status` (test/contract-checks.test.ts
// fails the build on any other writer). One function per edge of the state diagram in
// core/README.md; an edge that ends a run appends its closing event in the same transaction, so
// no path can finish a run without saying so in the session's log.
//
// Worker-side edges (from `running`) are fenced (fence.ts) and return false when the claim was
// lost: nothing is written then. Client-side edges run inside the caller's transaction, which
// already holds the session row (LOCK_ORDER in fence.ts).
import { PgCode, pgCode, withTransaction, type Pool, type Queryable } from "../db/pool.js";
import { appendEvent, appendEventFenced, encodeEvent, type EncodedEvent } from "./events.js";
import { ACTIVE_STATUS_SQL, FENCE, fenceValues, HOLDING_STATUS_SQL } from "./fence.js";
import { EngineEventType, type ClaimedRun, type RunStatus } from "./types.js";

/** Why a run ends when a message is posted with onBusy=interrupt (parked: at once; running: at its next step boundary). */
export const INTERRUPTED_BY_MESSAGE = "a new message interrupted the run";

export type RunSignals = { cancelRequested: boolean; interruptRequested: boolean };
/** `trace`: the run's stored trace context and how long it waited to be claimed (telemetry). */
export type Claim = ClaimedRun & { signals: RunSignals; trace: { traceparent: string | null; queuedMs: number } };

type ClaimRow = {
  id: string;
  session_id: string;
  team_id: string;
  epoch: bigint;
  attempt: number;
  max_attempts: number;
  takeovers: number;
  cancel_requested: boolean;
  interrupt_requested: boolean;
  traceparent: string | null;
  queued_ms: number;
};

/** (none) → queued. The caller's transaction holds the session row and appends the message. */
export async function enqueueRun(c: Queryable, a: { teamId: string; sessionId: string; maxAttempts: number; traceparent?: string }): Promise<string> {
  const { rows } = await c.query<{ id: string }>(
    "INSERT INTO runs (team_id, session_id, max_attempts, status, traceparent) VALUES ($1, $2, $3, 'queued', $4) RETURNING id",
    [a.teamId, a.sessionId, a.maxAttempts, a.traceparent ?? null],
  );
  return rows[0]!.id;
}

/**
 * queued → running: claims the oldest claimable run in one statement (graphile-worker's shape).
 * A run is claimable when it is queued, due, its session has no running run, and it is the
 * session's oldest queued run (messages of one session are handled in order). SKIP LOCKED lets
 * N workers claim N different runs without waiting on each other. If two workers still race to
 * start two runs of one session, the partial unique index runs_one_running_per_session rejects
 * the second UPDATE; we report "nothing claimed" and the worker looks again. A suspended team's
 * runs are not claimable (teams.suspended_at; they wait, queued, until the team is resumed, and
 * Platform.resumeTeam wakes the workers).
 */
export async function claimRun(db: Queryable, workerId: string, leaseMs: number): Promise<Claim | null> {
  try {
    // Named, so each connection plans it once: planning cost ~0.4 ms a claim, about as much as
    // executing it (measured with EXPLAIN ANALYZE; see BENCHMARKS.md).
    const { rows } = await db.query<ClaimRow>({ name: "keel_claim_run", text: CLAIM_SQL, values: [workerId, leaseMs] });
    const r = rows[0];
    if (!r) return null;
    return {
      id: r.id,
      sessionId: r.session_id,
      teamId: r.team_id,
      epoch: r.epoch,
      attempt: r.attempt,
      maxAttempts: r.max_attempts,
      takeovers: r.takeovers,
      workerId,
      // The claim reads the signals too, saving a round trip before the first step.
      signals: { cancelRequested: r.cancel_requested, interruptRequested: r.interrupt_requested },
      trace: { traceparent: r.traceparent, queuedMs: r.queued_ms },
    };
  } catch (err) {
    if (pgCode(err) === PgCode.uniqueViolation) return null;
    throw err;
  }
}

const CLAIM_SQL = `UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond',
        epoch = epoch + 1, claimed_at = now(), started_at = coalesce(started_at, now()), updated_at = now()
 WHERE id = (
   SELECT r.id FROM runs r
   WHERE r.status = 'queued' AND r.available_at <= now()
     AND EXISTS (SELECT 1 FROM teams t WHERE t.id = r.team_id AND t.suspended_at IS NULL)
     AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.session_id = r.session_id AND x.status IN ${HOLDING_STATUS_SQL})
     AND NOT EXISTS (SELECT 1 FROM runs y WHERE y.session_id = r.session_id AND y.status = 'queued'
                     AND (y.created_at, y.id) < (r.created_at, r.id))
   ORDER BY r.available_at, r.created_at
   LIMIT 1
   FOR UPDATE SKIP LOCKED)
 RETURNING id, session_id, team_id, epoch, attempt, max_attempts, takeovers, cancel_requested, interrupt_requested,
           traceparent, extract(epoch FROM clock_timestamp() - available_at)::float8 * 1000 AS queued_ms`;

const FINISH_SQL = `UPDATE runs SET status = $4, finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL,
        last_error = coalesce($5::jsonb, last_error)
 WHERE ${FENCE}`;

type Ending = Extract<RunStatus, "succeeded" | "failed" | "cancelled" | "interrupted">;

/** Ends a claimed run, appending its closing event (if any) in the same fenced transaction. */
async function finish(pool: Pool, run: ClaimedRun, status: Ending, closing?: EncodedEvent & { lastError?: object }): Promise<boolean> {
  if (!closing) {
    // Nothing to append: one fenced statement, no transaction round trips.
    const res = await pool.query({ name: "keel_finish_run", text: FINISH_SQL, values: [...fenceValues(run), status, null] });
    return res.rowCount === 1;
  }
  return withTransaction(pool, async (c) => {
    const seq = await appendEventFenced(c, { runId: run.id, epoch: run.epoch, workerId: run.workerId, type: closing.type, payloadText: closing.payloadText });
    if (seq === null) return false;
    const res = await c.query(FINISH_SQL, [...fenceValues(run), status, closing.lastError === undefined ? null : JSON.stringify(closing.lastError)]);
    if (res.rowCount !== 1) throw new FenceRollback();
    return true;
  }).catch((err: unknown) => {
    if (err instanceof FenceRollback) return false;
    throw err;
  });
}

class FenceRollback extends Error {}

/** running → succeeded: the step said "done". The log already ends with the step's own last item. */
export function completeRun(pool: Pool, run: ClaimedRun): Promise<boolean> {
  return finish(pool, run, "succeeded");
}

/** running → failed, with `run_failed` (the reason is also kept as the run's last_error). */
export function failRun(pool: Pool, run: ClaimedRun, reason: { code: string; message: string; attempts: number }): Promise<boolean> {
  const payload = { runId: run.id, ...reason };
  return finish(pool, run, "failed", { ...encodeEvent(EngineEventType.runFailed, payload), lastError: payload });
}

/** running → cancelled, with `run_cancelled`: the worker honours a cancel request at a step boundary. */
export function cancelRun(pool: Pool, run: ClaimedRun): Promise<boolean> {
  return finish(pool, run, "cancelled", encodeEvent(EngineEventType.runCancelled, { runId: run.id }));
}

/** running → interrupted, with `run_interrupted`: a newer message asked the run to stop. */
export function interruptRun(pool: Pool, run: ClaimedRun, reason: string): Promise<boolean> {
  return finish(pool, run, "interrupted", encodeEvent(EngineEventType.runInterrupted, { runId: run.id, reason }));
}

/**
 * running → queued after a failed attempt, due after `delayMs`, with `run_retrying` in the same
 * transaction, so a reader that sees the event sees the run queued with its next attempt time
 * (and the other way round).
 */
export async function retryRun(pool: Pool, run: ClaimedRun, delayMs: number, lastError: { code: string; message: string; attempt: number }): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    // The session first (LOCK_ORDER); now() is the transaction's start, the same in both statements.
    const { rows: at } = await c.query<{ next: Date }>("SELECT now() + $2 * interval '1 millisecond' AS next FROM sessions WHERE id = $1 FOR NO KEY UPDATE", [
      run.sessionId,
      delayMs,
    ]);
    const res = await c.query(
      `UPDATE runs SET status = 'queued', attempt = attempt + 1, lease_owner = NULL, lease_expires_at = NULL,
              available_at = now() + $4 * interval '1 millisecond', last_error = $5::jsonb, updated_at = now()
       WHERE ${FENCE}`,
      [...fenceValues(run), delayMs, JSON.stringify(lastError)],
    );
    if (res.rowCount !== 1 || !at[0]) return false;
    const payload = { runId: run.id, ...lastError, maxAttempts: run.maxAttempts, delayMs, nextAttemptAt: at[0].next.toISOString() };
    // The UPDATE above released the claim under its fence, in this transaction: nothing to re-check.
    await appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...encodeEvent(EngineEventType.runRetrying, payload) });
    return true;
  });
}

/** running → queued without counting an attempt (graceful shutdown, database outage). */
export async function handBackRun(db: Queryable, run: ClaimedRun): Promise<boolean> {
  const res = await db.query(
    `UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, available_at = now(), updated_at = now() WHERE ${FENCE}`,
    fenceValues(run),
  );
  return res.rowCount === 1;
}

/**
 * running → waiting_approval: parked until a human decides on a tool call; no worker holds it
 * meanwhile. A decision can arrive between the question (an event the UIs show at once) and this
 * park (`decideToolCall` then only records it): the run goes back to the queue instead, or it
 * would wait for a decision already made. The run row is locked first and the ledger read in a
 * second statement, so a decision committed while this waited for the lock is seen.
 */
export async function parkRun(pool: Pool, run: ClaimedRun): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    const held = await c.query(`SELECT 1 FROM runs WHERE ${FENCE} FOR UPDATE`, fenceValues(run));
    if (held.rowCount !== 1) return false;
    await c.query(
      `UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now(), available_at = now(),
         status = CASE WHEN EXISTS (SELECT 1 FROM tool_calls WHERE run_id = runs.id AND state = 'requested' AND approval IS NOT NULL)
                  THEN 'queued' ELSE 'waiting_approval' END
       WHERE id = $1`,
      [run.id],
    );
    return true;
  });
}

/** waiting_approval → queued: a human decided, any worker continues the run. False if it was not parked. */
export async function resumeAfterApproval(c: Queryable, runId: string): Promise<boolean> {
  const res = await c.query("UPDATE runs SET status = 'queued', available_at = now(), updated_at = now() WHERE id = $1 AND status = 'waiting_approval'", [
    runId,
  ]);
  return res.rowCount === 1;
}

/** Asks a running run to stop at its next step boundary; its worker then calls `interruptRun`. */
export async function requestInterrupt(c: Queryable, runId: string): Promise<void> {
  await c.query("UPDATE runs SET interrupt_requested = true, updated_at = now() WHERE id = $1", [runId]);
}

/**
 * waiting_approval → interrupted, with `run_interrupted`: no worker holds a parked run, so the
 * client ends it. Its undecided calls are answered "not run" by the next run.
 */
export async function interruptParkedRun(c: Queryable, run: { id: string; sessionId: string }, reason: string): Promise<boolean> {
  const res = await c.query("UPDATE runs SET status = 'interrupted', finished_at = now(), updated_at = now() WHERE id = $1 AND status = 'waiting_approval'", [
    run.id,
  ]);
  if (res.rowCount !== 1) return false;
  await appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...encodeEvent(EngineEventType.runInterrupted, { runId: run.id, reason }) });
  return true;
}

/**
 * Cancels every active run of a session (a cancel request, and a session delete, both come here):
 * queued and parked runs → cancelled at once, each with `run_cancelled`; a running run is asked to
 * stop at its next step boundary (its worker appends `run_cancelled` then). The caller holds the
 * session row.
 */
export async function cancelSessionRuns(c: Queryable, sessionId: string): Promise<{ cancelled: string[]; stopping: string[] }> {
  const { rows } = await c.query<{ id: string; status: RunStatus }>(
    `SELECT id, status FROM runs WHERE session_id = $1 AND status IN ${ACTIVE_STATUS_SQL} ORDER BY created_at, id FOR UPDATE`,
    [sessionId],
  );
  const out = { cancelled: [] as string[], stopping: [] as string[] };
  for (const r of rows) {
    if (r.status === "running") {
      await c.query("UPDATE runs SET cancel_requested = true, updated_at = now() WHERE id = $1", [r.id]);
      out.stopping.push(r.id);
    } else {
      await c.query("UPDATE runs SET status = 'cancelled', finished_at = now(), updated_at = now() WHERE id = $1", [r.id]);
      await appendEvent(c, { sessionId, runId: r.id, ...encodeEvent(EngineEventType.runCancelled, { runId: r.id }) });
      out.cancelled.push(r.id);
    }
  }
  return out;
}

export type TakeoverReason = "owner_gone" | "lease_expired";

/** running → queued (takeovers + 1): its worker died or its lease lapsed. The caller holds the row locked (takeover.ts). */
export async function requeueTakenOver(c: Queryable, runId: string): Promise<void> {
  await c.query(
    `UPDATE runs SET status = 'queued', takeovers = takeovers + 1, lease_owner = NULL, lease_expires_at = NULL, available_at = now(), updated_at = now()
     WHERE id = $1 AND status = 'running'`,
    [runId],
  );
}

/** running → failed, with `run_failed` (too_many_takeovers): the run keeps taking its workers down. */
export async function failTakenOver(c: Queryable, run: { id: string; sessionId: string; takeovers: number }, reason: TakeoverReason): Promise<void> {
  const code = "too_many_takeovers";
  const message = `the worker running this run stopped ${run.takeovers + 1} times; giving up so it cannot take down more workers`;
  await appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...encodeEvent(EngineEventType.runFailed, { runId: run.id, code, message }) });
  await c.query(
    `UPDATE runs SET status = 'failed', takeovers = takeovers + 1, lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
            finished_at = now(), last_error = $2::jsonb
     WHERE id = $1 AND status = 'running'`,
    [run.id, JSON.stringify({ code, reason })],
  );
}
