// Finding runs whose worker is gone, and putting them back in the queue.
//
// Each worker holds pg_advisory_lock(KEEL_LOCK_NAMESPACE, lock_key) on a dedicated connection for
// as long as it lives. When its process dies the kernel closes the socket, the backend exits and
// Postgres drops the lock at once, so "running, but the owner's lock is not held" identifies a
// dead owner within one sweep interval instead of a lease timeout. The lease (extended by
// heartbeats) stays as the backstop for a worker whose process and connection are alive but
// which makes no progress (hung, or cut off from Postgres on a path the server cannot see).
import { withTransaction, type Pool, type Queryable } from "../db/pool.js";
import { failTakenOver, requeueTakenOver, type TakeoverReason } from "./lifecycle.js";

/** 'keel' in ASCII: the first half of every advisory lock key Keel takes on worker connections. */
export const KEEL_LOCK_NAMESPACE = 0x6b65656c;

/** silentMs: since the previous owner's last heartbeat (null when its worker row is gone). */
export type TakenOver = { runId: string; sessionId: string; previousOwner: string | null; reason: TakeoverReason; failed: boolean; silentMs: number | null };

/**
 * pg_locks lists advisory locks of every database on the server: match our database, and the
 * two-int4 key form (objsubid = 2, classid = key1, objid = key2). $2 narrows it to given runs.
 */
const DEAD_RUNS_SQL = `
  SELECT r.id, r.session_id, r.lease_owner, r.takeovers,
         (r.lease_expires_at < now()) AS lease_expired, extract(epoch FROM now() - w.heartbeat_at)::float8 * 1000 AS silent_ms
  FROM runs r LEFT JOIN workers w ON w.id = r.lease_owner
  WHERE r.status = 'running' AND ($2::uuid[] IS NULL OR r.id = ANY($2::uuid[])) AND (
    r.lease_expires_at < now() OR w.id IS NULL OR NOT EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid::int8 = $1 AND l.objid::int8 = w.lock_key))
  ORDER BY r.lease_expires_at
  LIMIT 100`;

export async function takeOverDeadRuns(pool: Pool, opts: { maxTakeovers: number }): Promise<TakenOver[]> {
  // Every worker sweeps several times a second and almost always finds nothing: look first with
  // one plain statement, and only open a transaction when there is work.
  const probe = await pool.query<{ id: string; session_id: string }>({
    name: "keel_dead_runs_probe",
    text: DEAD_RUNS_SQL,
    values: [KEEL_LOCK_NAMESPACE, null],
  });
  if (probe.rowCount === 0) return [];
  return withTransaction(pool, async (c) => {
    // Lock first, then decide on a fresh snapshot. Deciding and locking in one statement
    // (SELECT … JOIN workers … FOR UPDATE SKIP LOCKED) is wrong under concurrency: when another
    // sweeper takes the run over and a live worker claims it while this statement runs,
    // Postgres re-checks only the new run row against the *old* join row (the dead owner's),
    // and the live worker's fresh claim would be taken from it. With the rows locked, nobody can
    // change them until we commit, and the second statement sees who owns them now.
    // Sessions before runs (LOCK_ORDER in fence.ts): a run that fails here appends to its session,
    // and a client holding that session while it waits for the run must not deadlock with us.
    // A session busy right now is skipped; the next sweep takes its run over.
    const sessions = await c.query<{ id: string }>("SELECT id FROM sessions WHERE id = ANY($1::uuid[]) FOR NO KEY UPDATE SKIP LOCKED", [
      probe.rows.map((r) => r.session_id),
    ]);
    const locked = await c.query<{ id: string }>(
      "SELECT id FROM runs WHERE id = ANY($1::uuid[]) AND session_id = ANY($2::uuid[]) AND status = 'running' FOR UPDATE SKIP LOCKED",
      [probe.rows.map((r) => r.id), sessions.rows.map((r) => r.id)],
    );
    if (locked.rowCount === 0) return [];
    const { rows } = await c.query<{
      id: string;
      session_id: string;
      lease_owner: string | null;
      takeovers: number;
      lease_expired: boolean;
      silent_ms: number | null;
    }>(DEAD_RUNS_SQL, [KEEL_LOCK_NAMESPACE, locked.rows.map((r) => r.id)]);
    const out: TakenOver[] = [];
    for (const r of rows) {
      const reason = r.lease_expired ? "lease_expired" : "owner_gone";
      const failed = r.takeovers + 1 >= opts.maxTakeovers;
      if (failed) await failTakenOver(c, { id: r.id, sessionId: r.session_id, takeovers: r.takeovers }, reason);
      else await requeueTakenOver(c, r.id);
      out.push({ runId: r.id, sessionId: r.session_id, previousOwner: r.lease_owner, reason, failed, silentMs: r.silent_ms });
    }
    return out;
  });
}

/** Marks workers whose lock is gone as stopped (bookkeeping for /status; runs are handled above). */
export async function markDeadWorkers(db: Queryable): Promise<number> {
  const res = await db.query(
    `UPDATE workers w SET stopped_at = now()
     WHERE w.stopped_at IS NULL AND NOT EXISTS (
       SELECT 1 FROM pg_locks l
       WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND l.classid::int8 = $1 AND l.objid::int8 = w.lock_key)`,
    [KEEL_LOCK_NAMESPACE],
  );
  return res.rowCount ?? 0;
}
