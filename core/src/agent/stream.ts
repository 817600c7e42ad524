// Token deltas for live display. Ephemeral by design: they are not in the log (the completed
// assistant item is), so they go out as NOTIFY on `keel_stream` and nothing is lost if nobody
// listens. Postgres caps a payload at 8000 bytes; deltas are small, and longer ones are cut.
//
// Order: the pool may send two deltas on two connections, and notifications are delivered in
// commit order, so each run's deltas are chained (the next NOTIFY is sent once the previous one
// returned) and numbered (`n`) so a reader can also check the order itself.
import type { Queryable } from "../db/pool.js";
import type { ClaimedRun } from "../engine/types.js";
import type { DeltaSink } from "./model.js";

export const STREAM_CHANNEL = "keel_stream";

export type DeltaNotifier = ((run: ClaimedRun, delta: Parameters<DeltaSink>[0]) => void) & {
  /**
   * Resolves once every delta sent so far for this run has been notified. The loop awaits it
   * before storing the assistant item, so a reader gets a call's last delta before the item that
   * replaces the draft (notifications go out in commit order), not after it.
   */
  flush(run: ClaimedRun): Promise<void>;
};

export function notifyDeltas(db: Queryable): DeltaNotifier {
  const chains = new Map<string, { tail: Promise<unknown>; n: number }>();
  const send = (run: ClaimedRun, delta: Parameters<DeltaSink>[0]) => {
    const key = `${run.id}:${run.epoch}`;
    const chain = chains.get(key) ?? { tail: Promise.resolve(), n: 0 };
    const n = ++chain.n;
    let payload = JSON.stringify({ sessionId: run.sessionId, runId: run.id, n, delta });
    if (payload.length > 7_000) payload = JSON.stringify({ sessionId: run.sessionId, runId: run.id, n, delta: { truncated: true } });
    const tail = chain.tail.then(() => db.query("SELECT pg_notify($1, $2)", [STREAM_CHANNEL, payload])).catch(() => {});
    chain.tail = tail;
    chains.set(key, chain);
    void tail.then(() => {
      if (chains.get(key)?.tail === tail) chains.delete(key); // nothing queued behind it: forget the run
    });
  };
  return Object.assign(send, {
    flush: async (run: ClaimedRun) => {
      await chains.get(`${run.id}:${run.epoch}`)?.tail;
    },
  });
}
