// A human's decision on a tool call that requires approval: stored on the ledger row, and the
// parked run goes back to the queue (waiting_approval → queued), so any worker continues it.
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import type { Pool } from "../db/pool.js";
import { actingTeam, type Acting, type Principal } from "../access/principal.js";
import { audited } from "../audit.js";
import { isUuid } from "./client.js";
import { appendEvent, encodeEvent } from "./events.js";
import { recordApproval } from "./ledger.js";
import { resumeAfterApproval } from "./lifecycle.js";
import { EngineEventType } from "./types.js";

/**
 * `by`: the principal deciding (role checked; `tool_call.approve`/`tool_call.deny` audited in the
 * same transaction; the event's `decidedBy` is its actor). The operator's own calls (tests) give
 * `teamId` and optionally `decidedBy` instead, and are not audited.
 */
export type ApprovalDecision = { sessionId: string; callId: string; approve: boolean; reason?: string } & (
  { by: Principal } | { teamId: string; decidedBy?: string }
);

export async function decideToolCall(pool: Pool, d: ApprovalDecision): Promise<{ runId: string; seq: bigint }> {
  const by: Acting = "by" in d ? d.by : d.teamId;
  const teamId = actingTeam(by, "member");
  const decidedBy = "by" in d ? d.by.actor : d.decidedBy;
  if (!isUuid(d.sessionId)) throw new NotFoundError("Session", d.sessionId);
  if (d.reason !== undefined && d.reason.length > 2000) throw new ValidationError("reason must be at most 2000 characters");
  const action = d.approve ? "tool_call.approve" : "tool_call.deny";
  return audited(
    pool,
    by,
    async (c) => {
      const s = await c.query("SELECT 1 FROM sessions WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE", [d.sessionId, teamId]);
      if (s.rowCount !== 1) throw new NotFoundError("Session", d.sessionId);
      // FOR UPDATE OF r too: `parkRun` locks the run before it reads the ledger, so a decision and
      // the park that follows the question are ordered one way or the other, never interleaved.
      const { rows } = await c.query<{ run_id: string; status: string; approval: string | null; key: string; asked: boolean }>(
        `SELECT tc.run_id, r.status, tc.approval, tc.idempotency_key AS key,
              EXISTS (SELECT 1 FROM session_events e WHERE e.session_id = r.session_id AND e.run_id = r.id AND e.type = 'approval_requested'
                      AND e.payload::jsonb ->> 'callId' = tc.call_id) AS asked
       FROM tool_calls tc JOIN runs r ON r.id = tc.run_id
       WHERE r.session_id = $1 AND tc.call_id = $2 ORDER BY tc.created_at DESC LIMIT 1 FOR UPDATE OF tc, r`,
        [d.sessionId, d.callId],
      );
      const row = rows[0];
      if (!row) throw new NotFoundError("ToolCall", d.callId);
      if (row.approval !== null) throw new ConflictError("already_decided", `this call was already ${row.approval}`, { callId: d.callId });
      // Parked, or (the question is in the log) between the question and the park: the worker that
      // asked has not yet let go of the run, or a takeover queued it again. In those two cases the
      // decision is only recorded, and `parkRun` queues the run instead of parking it.
      const waiting = row.status === "waiting_approval" || (row.asked && (row.status === "running" || row.status === "queued"));
      if (!waiting) throw new ConflictError("not_waiting", "the run is not waiting for approval", { callId: d.callId, runStatus: row.status });
      const decision = d.approve ? ("approved" as const) : ("denied" as const);
      await recordApproval(c, row.key, decision, d.reason ?? null);
      if (row.status === "waiting_approval") await resumeAfterApproval(c, row.run_id);
      const seq = await appendEvent(c, {
        sessionId: d.sessionId,
        runId: row.run_id,
        ...encodeEvent(EngineEventType.approvalDecided, { callId: d.callId, decision, reason: d.reason ?? null, decidedBy: decidedBy ?? null }),
      });
      return { runId: row.run_id, seq };
    },
    () => ({ action, target: d.sessionId, details: { callId: d.callId } }),
  );
}
