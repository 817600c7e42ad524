// The StepContext the worker hands each step: the session's log to read, and every write a step
// may make (append, tool ledger, token usage), each fenced by the run's epoch. A step holds no
// pool for writing and imports no engine internals; a worker that lost its claim writes nothing.
import { ClaimLostError } from "../errors.js";
import type { Pool } from "../db/pool.js";
import { appendEventFenced, encodeNewEvent, readAllEvents } from "./events.js";
import { getLedger, markToolStarted, recordModelReply, recordToolResult } from "./ledger.js";
import type { ClaimedRun, StepContext } from "./types.js";

export function createStepContext(o: { pool: Pool; run: ClaimedRun; signal: AbortSignal; maxEventBytes: number }): StepContext {
  const { pool, run, maxEventBytes } = o;
  return {
    run,
    signal: o.signal,
    maxEventBytes,
    events: () => readAllEvents(pool, run.sessionId),
    append: async (e) => {
      const seq = await appendEventFenced(pool, { runId: run.id, epoch: run.epoch, workerId: run.workerId, ...encodeNewEvent(e, maxEventBytes) });
      if (seq === null) throw new ClaimLostError(run.id, run.epoch);
      return seq;
    },
    ledger: {
      get: (key) => getLedger(pool, key),
      recordModelReply: ({ event, calls, usage }) => recordModelReply(pool, run, { ...encodeNewEvent(event, maxEventBytes), calls, usage }),
      markStarted: (key) => markToolStarted(pool, run, key),
      recordResult: (key, outcome, event) => recordToolResult(pool, run, key, outcome, encodeNewEvent(event, maxEventBytes)),
    },
  };
}
