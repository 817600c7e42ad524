// The sandboxes table: each sandbox's lifecycle state, for the dashboard, the reaper on other
// machines and the Kubernetes driver. Drivers record every transition here; the local driver's
// own truth for processes stays on disk beside the workspace (sandbox.json).
import type { Queryable } from "../db/pool.js";
import type { SandboxState } from "./driver.js";

// The table is created by prisma/migrations/20261125190000_sandboxes.

export type SandboxRow = {
  id: string;
  teamId: string;
  sessionId: string;
  driver: string;
  state: SandboxState;
  lastError: string | null;
  lastActiveAt: Date;
  createdAt?: Date;
  updatedAt?: Date;
  terminatedAt?: Date | null;
};

type DbRow = {
  id: string;
  team_id: string;
  session_id: string;
  driver: string;
  state: SandboxState;
  last_error: string | null;
  last_active_at: Date;
  created_at: Date;
  updated_at: Date;
  terminated_at: Date | null;
};

const COLUMNS = "id, team_id, session_id, driver, state, last_error, last_active_at, created_at, updated_at, terminated_at";

function toRow(r: DbRow): SandboxRow {
  return {
    id: r.id,
    teamId: r.team_id,
    sessionId: r.session_id,
    driver: r.driver,
    state: r.state,
    lastError: r.last_error,
    lastActiveAt: r.last_active_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    terminatedAt: r.terminated_at,
  };
}

export class SandboxStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Upsert by sandbox id. A terminated row never comes back to life: a late write from a slow
   * worker after the reaper terminated the sandbox is ignored (WHERE state <> 'terminated').
   */
  async record(s: SandboxRow): Promise<void> {
    if (s.state === "requested") {
      // A new sandbox for the session replaces any earlier one the database still thinks is
      // live (its directory was wiped, or its termination was never recorded).
      await this.db.query(
        `UPDATE sandboxes SET state = 'terminated', terminated_at = now(), updated_at = now(), last_error = coalesce(last_error, 'replaced by a new sandbox')
         WHERE team_id = $1 AND session_id = $2 AND id <> $3 AND state <> 'terminated'`,
        [s.teamId, s.sessionId, s.id],
      );
    }
    // A sandbox of a session (or team) deleted meanwhile has nothing left to record against: its
    // row went with it (cascade). The reaper releasing a deleted team's sandboxes got a foreign
    // key error here for each one.
    await this.db.query(
      `INSERT INTO sandboxes (id, team_id, session_id, driver, state, last_error, last_active_at, terminated_at)
       SELECT $1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::timestamptz, CASE WHEN $5::text = 'terminated' THEN now() END
       WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $3::uuid AND team_id = $2::uuid)
       ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, last_error = EXCLUDED.last_error,
         last_active_at = GREATEST(sandboxes.last_active_at, EXCLUDED.last_active_at), updated_at = now(),
         terminated_at = EXCLUDED.terminated_at
       WHERE sandboxes.state <> 'terminated' AND sandboxes.team_id = EXCLUDED.team_id`,
      [s.id, s.teamId, s.sessionId, s.driver, s.state, s.lastError, s.lastActiveAt],
    );
  }

  async get(teamId: string, id: string): Promise<SandboxRow | undefined> {
    const { rows } = await this.db.query<DbRow>(`SELECT ${COLUMNS} FROM sandboxes WHERE team_id = $1 AND id = $2`, [teamId, id]);
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  async findLive(teamId: string, sessionId: string): Promise<SandboxRow | undefined> {
    const { rows } = await this.db.query<DbRow>(`SELECT ${COLUMNS} FROM sandboxes WHERE team_id = $1 AND session_id = $2 AND state <> 'terminated'`, [
      teamId,
      sessionId,
    ]);
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  /** The session's live sandbox, else its most recent terminated one (for "it was terminated"). */
  async latestForSession(teamId: string, sessionId: string): Promise<SandboxRow | undefined> {
    const { rows } = await this.db.query<DbRow>(
      `SELECT ${COLUMNS} FROM sandboxes WHERE team_id = $1 AND session_id = $2 ORDER BY (state <> 'terminated') DESC, created_at DESC LIMIT 1`,
      [teamId, sessionId],
    );
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  async listByTeam(teamId: string, opts: { includeTerminated?: boolean; limit?: number } = {}): Promise<SandboxRow[]> {
    const { rows } = await this.db.query<DbRow>(
      `SELECT ${COLUMNS} FROM sandboxes WHERE team_id = $1 AND ($2 OR state <> 'terminated') ORDER BY created_at DESC LIMIT $3`,
      [teamId, opts.includeTerminated === true, opts.limit ?? 100],
    );
    return rows.map(toRow);
  }
}

/** Which of these sessions still exist and are not archived (for the reaper's orphan check). */
export async function liveSessionIds(db: Queryable, sessionIds: string[]): Promise<Set<string>> {
  if (sessionIds.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM sessions WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL AND status <> 'archived'`, [
    sessionIds,
  ]);
  return new Set(rows.map((r) => r.id));
}

/**
 * Which of these teams still exist (for the reaper: a deleted team's namespace goes). null when the
 * database holds no team at all: that is a wrong or empty database, never "every team deleted".
 * Ids that are not UUIDs (a namespace someone else labelled) count as existing: left alone.
 */
export async function liveTeamIds(db: Queryable, teamIds: string[]): Promise<Set<string> | null> {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const { rows } = await db.query<{ id: string | null; any_team: boolean }>(
    `SELECT t.id, EXISTS (SELECT 1 FROM teams) AS any_team FROM (SELECT 1) one LEFT JOIN teams t ON t.id = ANY($1::uuid[])`,
    [teamIds.filter((t) => uuid.test(t))],
  );
  if (!rows[0]?.any_team) return null;
  return new Set([...rows.flatMap((r) => (r.id ? [r.id] : [])), ...teamIds.filter((t) => !uuid.test(t))]);
}
