// Worker-side reads and leases on runs: the signals a step boundary checks, and heartbeats.
// Status changes are in lifecycle.ts; the fence they all share is in fence.ts.
export { backoffMs } from "../backoff.js";
import type { Queryable } from "../db/pool.js";
import { FENCE, fencePredicate, fenceValues } from "./fence.js";
import type { RunSignals } from "./lifecycle.js";
import type { ClaimedRun } from "./types.js";

/** Reads the run's signals if the claim still holds; null when it is lost. */
export async function readSignals(db: Queryable, run: ClaimedRun): Promise<RunSignals | null> {
  const { rows } = await db.query<{ cancel_requested: boolean; interrupt_requested: boolean }>({
    name: "keel_read_signals",
    text: `SELECT cancel_requested, interrupt_requested FROM runs WHERE ${FENCE}`,
    values: fenceValues(run),
  });
  const r = rows[0];
  return r ? { cancelRequested: r.cancel_requested, interruptRequested: r.interrupt_requested } : null;
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
     WHERE ${fencePredicate({ id: "a.id", epoch: "a.epoch", owner: "$1" }, "runs")}`,
    [workerId, leaseMs, active.map((r) => r.id), active.map((r) => r.epoch.toString())],
  );
}
