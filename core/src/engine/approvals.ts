// A human's decision on a tool call that requires approval: stored on the ledger row, and the
// parked run goes back to the queue (waiting_approval → queued), so any worker continues it.
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import type { Pool, Queryable } from "../db/pool.js";
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

export type PendingApproval = {
  sessionId: string;
  sessionTitle: string | null;
  agentId: string;
  agentName: string;
  runId: string;
  callId: string;
  tool: string;
  /** The call's arguments as the model wrote them (JSON text), cut at `ARGUMENTS_PREVIEW_CHARS`. */
  arguments: string;
  argumentsTruncated: boolean;
  requestedAt: Date;
};

/** Enough to judge most calls in a list; the whole call is in the session's log. */
const ARGUMENTS_PREVIEW_CHARS = 2_000;

/**
 * The team's tool calls waiting for a human, oldest question first (the approvals inbox), and
 * how many there are in all. Waiting means what `decideToolCall` accepts for a parked run: asked
 * in the log, undecided on the ledger. A run between the question and its park (a moment) shows
 * up on the next read.
 */
export async function pendingApprovals(db: Queryable, teamId: string, limit = 100): Promise<{ approvals: PendingApproval[]; total: number }> {
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ValidationError("limit must be a whole number from 1 to 500", { limit });
  const { rows } = await db.query<PendingApproval & { total: number; argumentsText: string }>(
    `SELECT s.id AS "sessionId", s.title AS "sessionTitle", a.id AS "agentId", a.name AS "agentName", r.id AS "runId",
            tc.call_id AS "callId", tc.name AS tool, q.arguments AS "argumentsText", q.created_at AS "requestedAt",
            count(*) OVER ()::int AS total
     FROM runs r
     JOIN sessions s ON s.id = r.session_id AND s.deleted_at IS NULL
     JOIN agents a ON a.id = s.agent_id
     JOIN tool_calls tc ON tc.run_id = r.id AND tc.approval IS NULL
     JOIN LATERAL (SELECT e.created_at, e.payload::jsonb ->> 'arguments' AS arguments FROM session_events e
                   WHERE e.session_id = r.session_id AND e.run_id = r.id AND e.type = 'approval_requested'
                     AND e.payload::jsonb ->> 'callId' = tc.call_id
                   ORDER BY e.seq LIMIT 1) q ON true
     WHERE r.team_id = $1 AND r.status = 'waiting_approval'
     ORDER BY q.created_at, tc.call_id
     LIMIT $2`,
    [teamId, limit],
  );
  return {
    total: rows[0]?.total ?? 0,
    approvals: rows.map(({ total: _, argumentsText, ...r }) => {
      // The question's own copy: the model's text, as the session's log shows it.
      const args = argumentsText ?? "";
      return { ...r, arguments: args.slice(0, ARGUMENTS_PREVIEW_CHARS), argumentsTruncated: args.length > ARGUMENTS_PREVIEW_CHARS };
    }),
  };
}
