// The tool ledger (`tool_calls`): the intent is written with the assistant message that asked for
// the call, the start before the tool runs, the result (with its event) after. Every worker write
// is fenced by the run's epoch and reaches a step only through its StepContext (step-context.ts).
// Idempotency key: the asking run's id + the call id (`ledgerKey`).
import type { Pool, Queryable } from "../db/pool.js";
import { appendEvent, type EncodedEvent } from "./events.js";
import { withFence } from "./fence.js";
import { ledgerKey, type ClaimedRun, type LedgerRow, type TokenUsage, type ToolCallIntent, type ToolCallState } from "./types.js";

/** Appends the assistant message and the intents of its calls, and adds its token usage to the run. */
export async function recordModelReply(
  pool: Pool,
  run: ClaimedRun,
  reply: EncodedEvent & { calls: readonly ToolCallIntent[]; usage: TokenUsage | null },
): Promise<bigint> {
  return withFence(pool, run, async (c) => {
    const seq = await appendEvent(c, { sessionId: run.sessionId, type: reply.type, payloadText: reply.payloadText, runId: run.id });
    for (const call of reply.calls) {
      // A model that repeats a call id within a run gets one ledger row for it (first wins).
      await c.query(
        `INSERT INTO tool_calls (run_id, call_id, idempotency_key, name, arguments, epoch)
         VALUES ($1, $2, $3, $4, $5::json, $6) ON CONFLICT DO NOTHING`,
        [run.id, call.callId, ledgerKey(run.id, call.callId), call.name, JSON.stringify(call.arguments), run.epoch],
      );
    }
    if (reply.usage) {
      await c.query("UPDATE runs SET prompt_tokens = prompt_tokens + $2, completion_tokens = completion_tokens + $3 WHERE id = $1", [
        run.id,
        reply.usage.promptTokens,
        reply.usage.completionTokens,
      ]);
    }
    return seq;
  });
}

export async function getLedger(db: Queryable, key: string): Promise<LedgerRow | null> {
  const { rows } = await db.query<{
    idempotency_key: string;
    state: ToolCallState;
    approval: "approved" | "denied" | null;
    approval_reason: string | null;
    result: string | null;
  }>("SELECT idempotency_key, state, approval, approval_reason, result::text AS result FROM tool_calls WHERE idempotency_key = $1", [key]);
  const r = rows[0];
  return r ? { idempotencyKey: r.idempotency_key, state: r.state, approval: r.approval, approvalReason: r.approval_reason, result: r.result } : null;
}

/** The intent is on record before anything runs: a crash after this point is detectable. */
export async function markToolStarted(pool: Pool, run: ClaimedRun, key: string): Promise<void> {
  await withFence(pool, run, (c) =>
    c.query("UPDATE tool_calls SET state = 'started', started_at = now(), epoch = $2 WHERE idempotency_key = $1 AND state IN ('requested', 'started')", [
      key,
      run.epoch,
    ]),
  );
}

/** Stores the outcome (when the call has a ledger row) and the model-visible event in one fenced transaction. */
export async function recordToolResult(
  pool: Pool,
  run: ClaimedRun,
  key: string | null,
  outcome: { state: ToolCallState; result: unknown },
  event: EncodedEvent,
): Promise<bigint> {
  return withFence(pool, run, async (c) => {
    if (key) {
      await c.query("UPDATE tool_calls SET state = $2, result = $3::json, finished_at = now(), epoch = $4 WHERE idempotency_key = $1", [
        key,
        outcome.state,
        JSON.stringify(outcome.result),
        run.epoch,
      ]);
    }
    return appendEvent(c, { sessionId: run.sessionId, runId: run.id, ...event });
  });
}

/** A human's decision, on the ledger row of a parked run's call (approvals.ts holds the session). */
export async function recordApproval(c: Queryable, key: string, decision: "approved" | "denied", reason: string | null): Promise<void> {
  await c.query("UPDATE tool_calls SET approval = $2, approval_reason = $3 WHERE idempotency_key = $1", [key, decision, reason]);
}
