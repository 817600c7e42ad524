// Worker-side SQL on runs: claim, fence, finish, retry, hand back, heartbeat.
// Every write after the claim carries `epoch = $e AND lease_owner = $w AND status = 'running'`;
// zero rows means another worker owns the run now: the caller stops and does not retry.
import { ClaimLostError } from "../errors.js";
export { backoffMs } from "../backoff.js";
import { PgCode, pgCode, withTransaction, type Pool, type PoolClient, type Queryable } from "../db/pool.js";
import { appendEvent, appendEventFenced, encodeEvent, type EncodedEvent } from "./events.js";
import { EngineEventType, type ClaimedRun, type RunStatus } from "./types.js";

type ClaimRow = { id: string; session_id: string; team_id: string; epoch: bigint; attempt: number; max_attempts: number; takeovers: number; cancel_requested: boolean; interrupt_requested: boolean };

/**
 * Claims the oldest claimable run in one statement (graphile-worker's shape).
 * A run is claimable when it is queued, due, its session has no running run, and it is the
 * session's oldest queued run (messages of one session are handled in order). SKIP LOCKED lets
 * N workers claim N different runs without waiting on each other. If two workers still race to
 * start two runs of one session, the partial unique index runs_one_running_per_session rejects
 * the second UPDATE; we report "nothing claimed" and the worker looks again.
 */
export type Claim = ClaimedRun & { signals: RunSignals };

export async function claimRun(db: Queryable, workerId: string, leaseMs: number): Promise<Claim | null> {
  try {
    // Named, so each connection plans it once: planning cost ~0.4 ms a claim, about as much as
    // executing it (measured with EXPLAIN ANALYZE; see BENCHMARKS.md).
    const { rows } = await db.query<ClaimRow>({
      name: "keel_claim_run",
      text: `UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond',
              epoch = epoch + 1, claimed_at = now(), started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = (
         SELECT r.id FROM runs r
         WHERE r.status = 'queued' AND r.available_at <= now()
           AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.session_id = r.session_id AND x.status IN ('running', 'waiting_approval'))
           AND NOT EXISTS (SELECT 1 FROM runs y WHERE y.session_id = r.session_id AND y.status = 'queued'
                           AND (y.created_at, y.id) < (r.created_at, r.id))
         ORDER BY r.available_at, r.created_at
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
       RETURNING id, session_id, team_id, epoch, attempt, max_attempts, takeovers, cancel_requested, interrupt_requested`,
      values: [workerId, leaseMs],
    });
    const r = rows[0];
    if (!r) return null;
    return {
      id: r.id, sessionId: r.session_id, teamId: r.team_id, epoch: r.epoch, attempt: r.attempt, maxAttempts: r.max_attempts, takeovers: r.takeovers, workerId,
      // The claim reads the signals too, saving a round trip before the first step.
      signals: { cancelRequested: r.cancel_requested, interruptRequested: r.interrupt_requested },
    };
  } catch (err) {
    if (pgCode(err) === PgCode.uniqueViolation) return null;
    throw err;
  }
}

export type RunSignals = { cancelRequested: boolean; interruptRequested: boolean };

/** Reads the run's signals if the claim still holds; null when it is lost. */
export async function readSignals(db: Queryable, run: ClaimedRun): Promise<RunSignals | null> {
  const { rows } = await db.query<{ cancel_requested: boolean; interrupt_requested: boolean }>({
    name: "keel_read_signals",
    text: `SELECT cancel_requested, interrupt_requested FROM runs WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND status = 'running'`,
    values: [run.id, run.epoch, run.workerId],
  });
  const r = rows[0];
  return r ? { cancelRequested: r.cancel_requested, interruptRequested: r.interrupt_requested } : null;
}

/**
 * Ends the run (and appends its closing event, if any) in one transaction, fenced.
 * Returns false when the claim was lost; nothing is written then.
 */
export async function finishRun(
  pool: Pool,
  run: ClaimedRun,
  status: Extract<RunStatus, "succeeded" | "failed" | "cancelled" | "interrupted">,
  closing?: EncodedEvent & { lastError?: unknown },
): Promise<boolean> {
  const finishSql = `UPDATE runs SET status = $4, finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL,
            last_error = coalesce($5::jsonb, last_error)
     WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND status = 'running'`;
  if (!closing) {
    // Nothing to append: one fenced statement, no transaction round trips.
    const res = await pool.query({ name: "keel_finish_run", text: finishSql, values: [run.id, run.epoch, run.workerId, status, null] });
    return res.rowCount === 1;
  }
  return withTransaction(pool, async (c) => {
    const seq = await appendEventFenced(c, { runId: run.id, epoch: run.epoch, workerId: run.workerId, type: closing.type, payloadText: closing.payloadText });
    if (seq === null) return false;
    const res = await c.query(finishSql, [run.id, run.epoch, run.workerId, status, closing.lastError === undefined ? null : JSON.stringify(closing.lastError)]);
    if (res.rowCount !== 1) throw new FenceRollback();
    return true;
  }).catch((err: unknown) => {
    if (err instanceof FenceRollback) return false;
    throw err;
  });
}

class FenceRollback extends Error {}

/**
 * Puts the run back in the queue after a failed attempt, due after `delayMs`, and appends the
 * `run_retrying` event in the same transaction, so a reader that sees the event sees the run
 * queued with its next attempt time (and the other way round). Fenced.
 */
export async function retryRun(pool: Pool, run: ClaimedRun, delayMs: number, lastError: { code: string; message: string; attempt: number }): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    // The session first (LOCK_ORDER); now() is the transaction's start, the same in both statements.
    const { rows: at } = await c.query<{ next: Date }>(
      "SELECT now() + $2 * interval '1 millisecond' AS next FROM sessions WHERE id = $1 FOR NO KEY UPDATE",
      [run.sessionId, delayMs],
    );
    const res = await c.query(
      `UPDATE runs SET status = 'queued', attempt = attempt + 1, lease_owner = NULL, lease_expires_at = NULL,
              available_at = now() + $4 * interval '1 millisecond', last_error = $5::jsonb, updated_at = now()
       WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND status = 'running'`,
      [run.id, run.epoch, run.workerId, delayMs, JSON.stringify(lastError)],
    );
    if (res.rowCount !== 1 || !at[0]) return false;
    const payload = { runId: run.id, ...lastError, maxAttempts: run.maxAttempts, delayMs, nextAttemptAt: at[0].next.toISOString() };
    // The UPDATE above released the claim under its fence, in this transaction: nothing to re-check.
    await appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...encodeEvent(EngineEventType.runRetrying, payload) });
    return true;
  });
}

/** Gives the run back without counting an attempt (graceful shutdown). Fenced. */
export async function handBackRun(db: Queryable, run: ClaimedRun): Promise<boolean> {
  const res = await db.query(
    `UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, available_at = now(), updated_at = now()
     WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND status = 'running'`,
    [run.id, run.epoch, run.workerId],
  );
  return res.rowCount === 1;
}

/** Parks the run until a human decides on a tool call; no worker holds it meanwhile. Fenced. */
export async function parkRun(db: Queryable, run: ClaimedRun): Promise<boolean> {
  const res = await db.query(
    `UPDATE runs SET status = 'waiting_approval', lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
     WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND status = 'running'`,
    [run.id, run.epoch, run.workerId],
  );
  return res.rowCount === 1;
}

/**
 * Records the worker's heartbeat and extends the leases of the runs it is driving right now.
 * Only those: a run this worker no longer drives (its step was aborted and the hand-back could
 * not be written) must let its lease lapse so another worker takes it over.
 */
export async function heartbeat(db: Queryable, workerId: string, leaseMs: number, active: readonly Pick<ClaimedRun, "id" | "epoch">[]): Promise<void> {
  await db.query(
    `WITH w AS (UPDATE workers SET heartbeat_at = now() WHERE id = $1)
     UPDATE runs SET lease_expires_at = now() + $2 * interval '1 millisecond'
     FROM unnest($3::uuid[], $4::bigint[]) AS a(id, epoch)
     WHERE runs.id = a.id AND runs.epoch = a.epoch AND runs.lease_owner = $1 AND runs.status = 'running'`,
    [workerId, leaseMs, active.map((r) => r.id), active.map((r) => r.epoch.toString())],
  );
}


/**
 * LOCK_ORDER: every transaction that locks both takes the session row before its runs (and a
 * run before its tool calls). Clients (post, cancel, approve, delete) lock the session first to
 * serialize on it; the worker's fenced writes do the same, so no two of them wait on each other
 * in a cycle. engine-race.test.ts races them against real Postgres.
 *
 * A transaction that holds the run's fence for its whole length: the run row is locked FOR SHARE
 * while this worker still owns it at this epoch, so a takeover (an UPDATE of that row) waits until
 * we commit, or we see it and write nothing (ClaimLostError). The session row is locked first.
 */
export async function withFence<T>(pool: Pool, run: ClaimedRun, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (c) => {
    const { rowCount } = await c.query(
      `WITH s0 AS (SELECT id FROM sessions WHERE id = $4 FOR NO KEY UPDATE)
       SELECT 1 FROM runs WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND status = 'running' AND session_id = (SELECT id FROM s0) FOR SHARE`,
      [run.id, run.epoch, run.workerId, run.sessionId],
    );
    if (rowCount !== 1) throw new ClaimLostError(run.id, run.epoch);
    return fn(c);
  });
}
