// Token deltas for live display. Ephemeral by design: they are not in the log (the completed
// assistant item is), so they go out as NOTIFY on `keel_stream` and nothing is lost if nobody
// listens. Postgres caps a payload at 8000 bytes; deltas are small, and longer ones are cut.
import type { Queryable } from "../db/pool.js";
import type { ClaimedRun } from "../engine/types.js";
import type { DeltaSink } from "./model.js";

export const STREAM_CHANNEL = "keel_stream";

export function notifyDeltas(db: Queryable): (run: ClaimedRun, delta: Parameters<DeltaSink>[0]) => void {
  return (run, delta) => {
    let payload = JSON.stringify({ sessionId: run.sessionId, runId: run.id, delta });
    if (payload.length > 7_000) payload = JSON.stringify({ sessionId: run.sessionId, runId: run.id, delta: { truncated: true } });
    db.query("SELECT pg_notify($1, $2)", [STREAM_CHANNEL, payload]).catch(() => {});
  };
}
