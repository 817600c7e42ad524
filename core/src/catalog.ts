// Read side for the API and dashboard: agents and sessions lists (cursor pagination, filters)
// and the fleet status. Team-scoped like everything else. Writes live in the services that own
// the rows (tenancy.ts: agents and sessions), which audit them.
import { NotFoundError, ValidationError } from "./errors.js";
import type { Queryable } from "./db/pool.js";
import { isUuid } from "./engine/client.js";
import { ACTIVE_STATUS_SQL } from "./engine/fence.js";
import { viewMcpServers } from "./agent/agent-config.js";

export type AgentSummary = {
  id: string;
  name: string;
  version: number;
  model: string;
  instructions: string;
  tools: unknown[];
  sandboxPolicy: unknown;
  provider: unknown;
  mcpServers: unknown[];
  createdAt: Date;
  updatedAt: Date;
};

const AGENT_SQL = `SELECT a.id, a.name, a.current_version AS version, v.model, v.instructions, v.tools, v.sandbox_policy AS "sandboxPolicy", v.provider, v.mcp_servers AS "mcpServers",
                          a.created_at AS "createdAt", a.updated_at AS "updatedAt"
                   FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
                   WHERE a.team_id = $1 AND a.deleted_at IS NULL`;

export async function listAgents(db: Queryable, teamId: string): Promise<AgentSummary[]> {
  return (await db.query<AgentSummary>(`${AGENT_SQL} ORDER BY a.name`, [teamId])).rows.map(view);
}

/** No credential is readable back (agent/agent-config.ts viewMcpServers). */
function view(a: AgentSummary): AgentSummary {
  return { ...a, mcpServers: viewMcpServers(a.mcpServers) };
}

export async function getAgent(db: Queryable, teamId: string, agentId: string): Promise<AgentSummary> {
  if (!isUuid(agentId)) throw new NotFoundError("Agent", agentId);
  const row = (await db.query<AgentSummary>(`${AGENT_SQL} AND a.id = $2`, [teamId, agentId])).rows[0];
  if (!row) throw new NotFoundError("Agent", agentId);
  return view(row);
}

/** A run that failed an attempt waits `queued` with attempt > 0 until nextAttemptAt: the session is retrying, not idle. */
export type ActiveRun = {
  id: string;
  status: string;
  attempt: number;
  maxAttempts: number;
  nextAttemptAt: string | null;
  lastError: { code?: string; message?: string } | null;
};
export type SessionRow = {
  id: string;
  agentId: string;
  agentName: string;
  agentVersion: number;
  title: string | null;
  status: string;
  lastSeq: string;
  createdAt: Date;
  updatedAt: Date;
  activeRun: ActiveRun | null;
};

export type SessionFilter = { cursor?: string; limit?: number; agentId?: string; status?: "active" | "idle" | "archived"; q?: string };

/**
 * Newest first, keyset-paginated on (created_at, id): a page costs the same at offset 100,000
 * as at 0, and rows inserted meanwhile neither repeat nor go missing.
 */
export async function listSessions(db: Queryable, teamId: string, f: SessionFilter = {}): Promise<{ sessions: SessionRow[]; nextCursor: string | null }> {
  const limit = f.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new ValidationError("limit must be between 1 and 200");
  let after: [string, string] | null = null;
  if (f.cursor) {
    try {
      const [ts, id] = JSON.parse(Buffer.from(f.cursor, "base64url").toString("utf8")) as [string, string];
      if (!isUuid(id) || Number.isNaN(Date.parse(ts))) throw new Error();
      after = [ts, id];
    } catch {
      throw new ValidationError("cursor is not valid; use nextCursor from the previous page");
    }
  }
  if (f.agentId !== undefined && !isUuid(f.agentId)) return { sessions: [], nextCursor: null };
  const { rows } = await db.query(
    `SELECT s.id, s.agent_id AS "agentId", a.name AS "agentName", s.agent_version AS "agentVersion", s.title, s.status, s.last_seq::text AS "lastSeq",
            s.created_at AS "createdAt", s.updated_at AS "updatedAt", s.created_at::text AS ts,
            (SELECT json_build_object('id', r.id, 'status', r.status, 'attempt', r.attempt, 'maxAttempts', r.max_attempts,
                                       'nextAttemptAt', CASE WHEN r.status = 'queued' AND r.attempt > 0 THEN r.available_at END,
                                       'lastError', CASE WHEN r.attempt > 0 THEN r.last_error END) FROM runs r WHERE r.session_id = s.id AND r.status IN ${ACTIVE_STATUS_SQL} ORDER BY r.created_at LIMIT 1) AS "activeRun"
     FROM sessions s JOIN agents a ON a.id = s.agent_id
     WHERE s.team_id = $1 AND s.deleted_at IS NULL
       AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2::timestamptz, $3::uuid))
       AND ($4::uuid IS NULL OR s.agent_id = $4::uuid)
       AND ($5::text IS NULL OR s.title ILIKE '%' || $5 || '%')
       AND ($8::uuid IS NULL OR s.id = $8::uuid)
       AND ($6::text IS NULL OR ($6 = 'archived' AND s.status = 'archived') OR ($6 <> 'archived' AND s.status <> 'archived' AND
            (EXISTS (SELECT 1 FROM runs r WHERE r.session_id = s.id AND r.status IN ${ACTIVE_STATUS_SQL})) = ($6 = 'active')))
     ORDER BY s.created_at DESC, s.id DESC LIMIT $7`,
    // A session id as q is looked up by primary key, not matched against every title: the session
    // page asks this on every event, and the title scan took ~0.5 s at 100,000 sessions (bench:web).
    [
      teamId,
      after?.[0] ?? null,
      after?.[1] ?? null,
      f.agentId ?? null,
      f.q && !isUuid(f.q) ? f.q.replace(/[%_\\]/g, "\\$&") : null,
      f.status ?? null,
      limit + 1,
      f.q && isUuid(f.q) ? f.q : null,
    ],
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const nextCursor = rows.length > limit && last ? Buffer.from(JSON.stringify([last.ts, last.id])).toString("base64url") : null;
  return { sessions: page.map(({ ts: _ts, ...r }) => r as SessionRow), nextCursor };
}

/**
 * One session as every client sees it: the same shape as a row of listSessions (agent name, the
 * run in progress), by primary key. The API's GET and POST answer it, so no client reads a
 * session through a list search or makes a second request for its agent's name.
 */
export async function getSessionRow(db: Queryable, teamId: string, sessionId: string): Promise<SessionRow> {
  if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
  const row = (await listSessions(db, teamId, { q: sessionId, limit: 1 })).sessions[0];
  if (!row) throw new NotFoundError("Session", sessionId);
  return row;
}

export type FleetStatus = {
  workers: { id: string; hostname: string; version: string; startedAt: Date; heartbeatAt: Date; alive: boolean }[];
  queueDepth: number;
  activeRuns: number;
  waitingApproval: number;
};

/** Workers are shared by all teams; run counts are this team's. */
export async function fleetStatus(db: Queryable, teamId: string): Promise<FleetStatus> {
  const workers = await db.query(
    `SELECT id, hostname, version, started_at AS "startedAt", heartbeat_at AS "heartbeatAt", stopped_at IS NULL AND heartbeat_at > now() - interval '2 minutes' AS alive
     FROM workers WHERE stopped_at IS NULL OR stopped_at > now() - interval '1 hour' ORDER BY started_at DESC LIMIT 200`,
  );
  const { rows } = await db.query<{ queued: number; running: number; waiting: number }>(
    `SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued, count(*) FILTER (WHERE status = 'running')::int AS running,
            count(*) FILTER (WHERE status = 'waiting_approval')::int AS waiting
     FROM runs WHERE team_id = $1 AND status IN ${ACTIVE_STATUS_SQL}`,
    [teamId],
  );
  return { workers: workers.rows, queueDepth: rows[0]!.queued, activeRuns: rows[0]!.running, waitingApproval: rows[0]!.waiting };
}

export type UsageTotals = { runs: number; promptTokens: number; completionTokens: number; totalTokens: number };
export type TeamUsage = { days: number; since: Date; totals: UsageTotals; byAgent: (UsageTotals & { agentId: string; agentName: string })[] };

/**
 * Tokens a team's runs used in the last `days` days (by when the run was created), in all and per
 * agent, as the providers reported them (the demo model reports an estimate).
 */
export async function teamUsage(db: Queryable, teamId: string, days = 30): Promise<TeamUsage> {
  if (!Number.isInteger(days) || days < 1 || days > 366) throw new ValidationError("days must be a whole number from 1 to 366", { days });
  const { rows } = await db.query<{ agentId: string; agentName: string; runs: number; p: string; c: string; since: Date }>(
    `SELECT s.agent_id AS "agentId", a.name AS "agentName", count(*)::int AS runs,
            sum(r.prompt_tokens)::bigint AS p, sum(r.completion_tokens)::bigint AS c, now() - make_interval(days => $2) AS since
     FROM runs r JOIN sessions s ON s.id = r.session_id JOIN agents a ON a.id = s.agent_id
     WHERE r.team_id = $1 AND r.created_at >= now() - make_interval(days => $2)
     GROUP BY s.agent_id, a.name ORDER BY sum(r.prompt_tokens + r.completion_tokens) DESC, a.name`,
    [teamId, days],
  );
  const byAgent = rows.map((r) => totalsOf(r.runs, Number(r.p), Number(r.c), { agentId: r.agentId, agentName: r.agentName }));
  const totals = totalsOf(
    byAgent.reduce((n, a) => n + a.runs, 0),
    byAgent.reduce((n, a) => n + a.promptTokens, 0),
    byAgent.reduce((n, a) => n + a.completionTokens, 0),
    {},
  );
  const since = rows[0]?.since ?? new Date(Date.now() - days * 86_400_000);
  return { days, since, totals, byAgent };
}

function totalsOf<T extends object>(runs: number, promptTokens: number, completionTokens: number, extra: T): T & UsageTotals {
  return { ...extra, runs, promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
}
