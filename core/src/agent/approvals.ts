// A human's decision on a tool call that requires approval. The decision is stored on the
// ledger row and the parked run goes back to the queue, so any worker continues it.
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { appendEvent, encodeEvent } from "../engine/events.js";
import { isUuid } from "../engine/client.js";
import { AgentEventType } from "./context.js";

export type ApprovalDecision = { teamId: string; sessionId: string; callId: string; approve: boolean; reason?: string; decidedBy?: string };

export async function decideToolCall(pool: Pool, d: ApprovalDecision): Promise<{ runId: string; seq: bigint }> {
  if (!isUuid(d.sessionId)) throw new NotFoundError("Session", d.sessionId);
  if (d.reason !== undefined && d.reason.length > 2000) throw new ValidationError("reason must be at most 2000 characters");
  return withTransaction(pool, async (c) => {
    const s = await c.query("SELECT 1 FROM sessions WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE", [d.sessionId, d.teamId]);
    if (s.rowCount !== 1) throw new NotFoundError("Session", d.sessionId);
    const { rows } = await c.query<{ run_id: string; status: string; approval: string | null; key: string }>(
      `SELECT tc.run_id, r.status, tc.approval, tc.idempotency_key AS key FROM tool_calls tc JOIN runs r ON r.id = tc.run_id
       WHERE r.session_id = $1 AND tc.call_id = $2 ORDER BY tc.created_at DESC LIMIT 1 FOR UPDATE OF tc`,
      [d.sessionId, d.callId],
    );
    const row = rows[0];
    if (!row) throw new NotFoundError("ToolCall", d.callId);
    if (row.approval !== null) throw new ConflictError("already_decided", `this call was already ${row.approval}`, { callId: d.callId });
    if (row.status !== "waiting_approval") throw new ConflictError("not_waiting", "the run is not waiting for approval", { callId: d.callId, runStatus: row.status });
    const decision = d.approve ? ("approved" as const) : ("denied" as const);
    await c.query("UPDATE tool_calls SET approval = $2, approval_reason = $3 WHERE idempotency_key = $1", [row.key, decision, d.reason ?? null]);
    await c.query("UPDATE runs SET status = 'queued', available_at = now(), updated_at = now() WHERE id = $1 AND status = 'waiting_approval'", [row.run_id]);
    const seq = await appendEvent(c, {
      sessionId: d.sessionId,
      runId: row.run_id,
      ...encodeEvent(AgentEventType.approvalDecided, { callId: d.callId, decision, reason: d.reason ?? null, decidedBy: d.decidedBy ?? null }),
    });
    return { runId: row.run_id, seq };
  });
}
