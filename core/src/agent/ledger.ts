// The tool ledger: the intent is written with the assistant message that asked for the call, the
// start before the tool runs, the result (with its tool_result event) after. Every write is
// fenced by the current run's epoch. Idempotency key: the asking run's id + the call id.
import type { Pool, Queryable } from "../db/pool.js";
import type { EventType, PayloadOf } from "../contract/events.js";
import { appendEvent, encodeEvent, type EncodedEvent } from "../engine/events.js";
import { withFence } from "../engine/runs.js";
import type { ClaimedRun } from "../engine/types.js";
import { AgentEventType, type ToolResultPayload } from "./context.js";
import type { ToolCallOut, Usage } from "./model.js";

export type ToolCallState = "requested" | "started" | "succeeded" | "failed" | "indeterminate";
export type LedgerRow = { idempotencyKey: string; state: ToolCallState; approval: "approved" | "denied" | null; approvalReason: string | null; result: string | null };

export const ledgerKey = (runId: string, callId: string) => `${runId}:${callId}`;

/** Appends the assistant message and the intents of its calls, and adds its token usage to the run. */
export async function recordAssistant(pool: Pool, run: ClaimedRun, item: EncodedEvent, calls: readonly ToolCallOut[], usage: Usage | null): Promise<bigint> {
  return withFence(pool, run, async (c) => {
    const seq = await appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...item });
    for (const call of calls) {
      // A model that repeats a call id within a run gets one ledger row for it (first wins).
      await c.query(
        `INSERT INTO tool_calls (run_id, call_id, idempotency_key, name, arguments, epoch)
         VALUES ($1, $2, $3, $4, $5::json, $6) ON CONFLICT DO NOTHING`,
        [run.id, call.id, ledgerKey(run.id, call.id), call.function.name, JSON.stringify(call.function.arguments), run.epoch],
      );
    }
    if (usage) {
      await c.query("UPDATE runs SET prompt_tokens = prompt_tokens + $2, completion_tokens = completion_tokens + $3 WHERE id = $1", [run.id, usage.promptTokens, usage.completionTokens]);
    }
    return seq;
  });
}

export async function getLedger(db: Queryable, key: string): Promise<LedgerRow | null> {
  const { rows } = await db.query<{ idempotency_key: string; state: ToolCallState; approval: "approved" | "denied" | null; approval_reason: string | null; result: string | null }>(
    "SELECT idempotency_key, state, approval, approval_reason, result::text AS result FROM tool_calls WHERE idempotency_key = $1",
    [key],
  );
  const r = rows[0];
  return r ? { idempotencyKey: r.idempotency_key, state: r.state, approval: r.approval, approvalReason: r.approval_reason, result: r.result } : null;
}

/** The intent is on record before anything runs: a crash after this point is detectable. */
export async function markStarted(pool: Pool, run: ClaimedRun, key: string): Promise<void> {
  await withFence(pool, run, (c) =>
    c.query("UPDATE tool_calls SET state = 'started', started_at = now(), epoch = $2 WHERE idempotency_key = $1 AND state IN ('requested', 'started')", [key, run.epoch]),
  );
}

/** Stores the outcome and the model-visible tool_result event in one fenced transaction. */
export async function recordToolResult(pool: Pool, run: ClaimedRun, key: string | null, result: ToolResultPayload): Promise<void> {
  await withFence(pool, run, async (c) => {
    if (key) {
      await c.query(
        "UPDATE tool_calls SET state = $2, result = $3::json, finished_at = now(), epoch = $4 WHERE idempotency_key = $1",
        [key, result.state, JSON.stringify(result.content), run.epoch],
      );
    }
    await appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...encodeEvent(AgentEventType.toolResult, result) });
  });
}

/** Appends an event of the loop's own (errors, approval requests, repairs), fenced. */
export async function appendLoopEvent<T extends EventType>(pool: Pool, run: ClaimedRun, type: T, payload: PayloadOf<T>): Promise<void> {
  await withFence(pool, run, (c) => appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...encodeEvent(type, payload) }));
}
