// The two run predicates every query shares, written once: which statuses are active, and the
// fence that makes a worker's write conditional on still holding the run.
//
// The status lists are spliced into SQL text as literals, not bound as `= ANY($n)`: the planner
// matches a partial index (`WHERE status = 'queued'`, `… = 'running'`) only against literal
// predicates, and a named statement is planned once per connection either way.
import { ClaimLostError } from "../errors.js";
import { withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { ACTIVE_RUN_STATUSES, SESSION_HOLDING_RUN_STATUSES, type ClaimedRun } from "./types.js";

const sqlList = (xs: readonly string[]) => `(${xs.map((x) => `'${x}'`).join(", ")})`;

/** `('queued', 'running', 'waiting_approval')`, for `status IN ${ACTIVE_STATUS_SQL}`. */
export const ACTIVE_STATUS_SQL = sqlList(ACTIVE_RUN_STATUSES);
/** `('running', 'waiting_approval')`: a run in one of these holds its session. */
export const HOLDING_STATUS_SQL = sqlList(SESSION_HOLDING_RUN_STATUSES);

/**
 * The fence: the run is still `running` at the epoch this worker claimed it with, and this worker
 * is its owner. Zero rows under it means the claim was lost: the caller stops and does not retry.
 * Arguments are SQL expressions (parameters such as `$1`, or columns of a join).
 */
export function fencePredicate(p: { id: string; epoch: string; owner: string }, alias?: string): string {
  const c = alias ? `${alias}.` : "";
  return `${c}id = ${p.id} AND ${c}epoch = ${p.epoch} AND ${c}lease_owner = ${p.owner} AND ${c}status = 'running'`;
}

/** The fence on parameters $1 (run id), $2 (epoch), $3 (worker id): see `fenceValues`. */
export const FENCE = fencePredicate({ id: "$1", epoch: "$2", owner: "$3" });
export const fenceValues = (run: ClaimedRun): [string, bigint, string] => [run.id, run.epoch, run.workerId];

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
       SELECT 1 FROM runs WHERE ${FENCE} AND session_id = (SELECT id FROM s0) FOR SHARE`,
      [...fenceValues(run), run.sessionId],
    );
    if (rowCount !== 1) throw new ClaimLostError(run.id, run.epoch);
    return fn(c);
  });
}
