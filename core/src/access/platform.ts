// Platform operators and teams (issue 18). A platform admin is a user flag, distinct from a team's
// admin role: it creates, renames, suspends and deletes teams and grants the flag to others. The
// callers are a Principal (the API: its platformAdmin flag is checked here) or "operator" (the CLI
// against DATABASE_URL, break-glass: no principal, the audit actor is "cli").
//
// Deleting a team, in one transaction (the order matters: sessions reference agents with
// RESTRICT, and web_sessions and sandbox_requests carry no foreign key to teams):
//   1. lock the team row; check the typed slug;
//   2. write the `team.delete` audit row under the team's id: audit_log has no foreign key, so the
//      team's whole audit trail is KEPT (read it with SQL; no API serves a deleted team's log);
//   3. delete its dashboard logins and relayed sandbox requests;
//   4. delete its sessions (their events, runs, tool calls and sandbox rows cascade);
//   5. delete the team (agents and versions, API keys, memberships, secrets, invitations cascade).
// After the commit: a worker holding one of its runs finds its fenced writes refused and stops;
// every worker's reaper releases sandboxes whose session is gone (local: process and directory;
// Kubernetes: the claim), and on Kubernetes removes the namespace of a team that no longer exists
// (sandbox/reaper.ts, liveTeamIds in sandbox/store.ts). User accounts are kept: they may belong
// to other teams (a user left with no team cannot log in until invited again).
import { z } from "zod";
import { ConflictError, NotFoundError, PlatformAdminRequiredError, ValidationError } from "../errors.js";
import { pgCode, PgCode, withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { isUuid } from "../engine/client.js";
import { audit } from "../audit.js";
import { TEAM_SLUG } from "../contract/vocabulary.js";
import type { Principal, Role } from "./principal.js";
import { createInvitation } from "./invitations.js";

export type PlatformCaller = Principal | "operator";
export type TeamInfo = {
  id: string;
  slug: string;
  name: string;
  createdAt: Date;
  suspendedAt: Date | null;
  suspendedReason: string | null;
  members: number;
};
export type PlatformAdmin = { userId: string; email: string };

/** Throws 403 unless the caller is a platform admin (or the operator's own CLI). */
export function requirePlatformAdmin(by: PlatformCaller): void {
  if (by !== "operator" && !by.platformAdmin) throw new PlatformAdminRequiredError();
}

const slugSchema = z.string().regex(TEAM_SLUG, "lowercase letters, digits and '-', starting with a letter or digit, up to 64");
const nameSchema = z.string().trim().min(1).max(200);

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new ValidationError("invalid input", { issues: r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) });
  return r.data;
}

const TEAM_COLUMNS = `t.id, t.slug, t.name, t.created_at AS "createdAt", t.suspended_at AS "suspendedAt", t.suspended_reason AS "suspendedReason",
  (SELECT count(*)::int FROM memberships m WHERE m.team_id = t.id) AS members`;

export class Platform {
  constructor(private readonly o: { pool: Pool }) {}

  async listTeams(by: PlatformCaller): Promise<TeamInfo[]> {
    requirePlatformAdmin(by);
    const { rows } = await this.o.pool.query<TeamInfo>(`SELECT ${TEAM_COLUMNS} FROM teams t ORDER BY t.created_at, t.slug`);
    return rows;
  }

  async getTeam(by: PlatformCaller, idOrSlug: string): Promise<TeamInfo> {
    requirePlatformAdmin(by);
    const { rows } = await this.o.pool.query<TeamInfo>(`SELECT ${TEAM_COLUMNS} FROM teams t WHERE ${isUuid(idOrSlug) ? "t.id = $1::uuid" : "t.slug = $1"}`, [
      idOrSlug,
    ]);
    if (!rows[0]) throw new NotFoundError("Team", idOrSlug);
    return rows[0];
  }

  /** A new, empty team. Inviting its first admin is `Invitations.create` (the API does both). */
  async createTeam(by: PlatformCaller, input: { slug: string; name?: string }): Promise<TeamInfo> {
    requirePlatformAdmin(by);
    const slug = parse(slugSchema, input.slug);
    const name = parse(nameSchema, input.name ?? slug);
    return this.tx(by, async (c) => {
      const { rows } = await c.query<{ id: string }>("INSERT INTO teams (slug, name) VALUES ($1, $2) RETURNING id", [slug, name]);
      return { id: rows[0]!.id, audit: ["team.create", { slug, name }] };
    });
  }

  /** Changes a team's slug and/or name. A slug in use: 409 team_exists. */
  async renameTeam(by: PlatformCaller, id: string, input: { slug?: string; name?: string }): Promise<TeamInfo> {
    requirePlatformAdmin(by);
    const slug = input.slug === undefined ? null : parse(slugSchema, input.slug);
    const name = input.name === undefined ? null : parse(nameSchema, input.name);
    if (slug === null && name === null) throw new ValidationError("give a new slug, a new name, or both");
    return this.tx(by, async (c) => {
      const old = await this.lock(c, id);
      await c.query("UPDATE teams SET slug = coalesce($2, slug), name = coalesce($3, name) WHERE id = $1", [id, slug, name]);
      return { id, audit: ["team.rename", { from: { slug: old.slug, name: old.name }, to: { slug: slug ?? old.slug, name: name ?? old.name } }] };
    });
  }

  /**
   * Suspends a team: its API keys, logins and streams answer 403 team_suspended with the reason
   * (checked at every authentication), and workers stop claiming its queued runs (the claim's WHERE
   * reads teams.suspended_at). Runs already running finish their turn. Nothing is deleted.
   */
  async suspendTeam(by: PlatformCaller, id: string, reason: string): Promise<TeamInfo> {
    requirePlatformAdmin(by);
    const why = parse(z.string().trim().min(1).max(500), reason);
    return this.tx(by, async (c) => {
      await this.lock(c, id);
      if (by !== "operator" && by.teamId === id)
        throw new ConflictError("own_team", "you cannot suspend the team you are acting in; switch to another team first");
      await c.query("UPDATE teams SET suspended_at = now(), suspended_reason = $2 WHERE id = $1", [id, why]);
      return { id, audit: ["team.suspend", { reason: why }] };
    });
  }

  /** Lifts a suspension; its queued runs (which waited) are claimed again: the workers are woken. */
  async resumeTeam(by: PlatformCaller, id: string): Promise<TeamInfo> {
    requirePlatformAdmin(by);
    return this.tx(by, async (c) => {
      await this.lock(c, id);
      await c.query("UPDATE teams SET suspended_at = NULL, suspended_reason = NULL WHERE id = $1", [id]);
      // The runs did not change, so runs_notify did not fire: wake the workers (unique payload).
      await c.query("SELECT pg_notify('keel_runs', 'team-resumed:' || $1::text || ':' || clock_timestamp()::text)", [id]);
      return { id, audit: ["team.resume", {}] };
    });
  }

  /** Deletes a team and everything it owns (the order and what is kept: the header). `confirmSlug` must be its slug. */
  async deleteTeam(by: PlatformCaller, id: string, confirmSlug: string): Promise<void> {
    requirePlatformAdmin(by);
    if (!isUuid(id)) throw new NotFoundError("Team", id);
    await withTransaction(this.o.pool, async (c) => {
      const team = await this.lock(c, id);
      if (confirmSlug !== team.slug)
        throw new ValidationError("type the team's slug to confirm deleting it", { issues: [{ path: "confirm", message: "does not match the team's slug" }] });
      if (by !== "operator" && by.teamId === id)
        throw new ConflictError("own_team", "you cannot delete the team you are acting in; switch to another team first");
      await this.auditRow(c, by, id, "team.delete", { slug: team.slug, name: team.name });
      await c.query("DELETE FROM web_sessions WHERE team_id = $1", [id]);
      await c.query("DELETE FROM sandbox_requests WHERE team_id = $1", [id]);
      await c.query("DELETE FROM sessions WHERE team_id = $1", [id]);
      await c.query("DELETE FROM teams WHERE id = $1", [id]);
    });
  }

  /**
   * Invites someone to any team (its first admin, typically), as the platform admin: the row is
   * audited in that team's log. The token is in this answer only.
   */
  async invite(by: PlatformCaller, teamId: string, input: { email: string; role: Role; ttlMs?: number }) {
    requirePlatformAdmin(by);
    await this.getTeam(by, teamId);
    const actor = by === "operator" ? "cli" : by.actor;
    return createInvitation(this.o.pool, { teamId, role: "admin", actor, userId: null, apiKeyId: null }, input);
  }

  async listAdmins(by: PlatformCaller): Promise<PlatformAdmin[]> {
    requirePlatformAdmin(by);
    const { rows } = await this.o.pool.query<PlatformAdmin>(`SELECT id AS "userId", email FROM users WHERE platform_admin ORDER BY created_at`);
    return rows;
  }

  /** Makes an existing user (by email) a platform admin. An unknown email: 404. */
  async grantAdmin(by: PlatformCaller, email: string): Promise<PlatformAdmin> {
    requirePlatformAdmin(by);
    const e = String(email ?? "")
      .trim()
      .toLowerCase();
    return withTransaction(this.o.pool, async (c) => {
      const { rows } = await c.query<PlatformAdmin>(`UPDATE users SET platform_admin = true WHERE email = $1 RETURNING id AS "userId", email`, [e]);
      if (!rows[0]) throw new NotFoundError("User", e);
      if (by !== "operator") await audit(c, by, "platform_admin.grant", rows[0].userId, { email: e });
      return rows[0];
    });
  }

  /** Takes the flag away. The last platform admin keeps it: 409 last_platform_admin. */
  async revokeAdmin(by: PlatformCaller, userId: string): Promise<void> {
    requirePlatformAdmin(by);
    if (!isUuid(userId)) throw new NotFoundError("User", userId);
    await withTransaction(this.o.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(7270003)"); // two admins revoking each other at once
      const { rows } = await c.query<{ n: number; is: boolean }>(
        "SELECT count(*) FILTER (WHERE platform_admin)::int AS n, bool_or(id = $1 AND platform_admin) AS is FROM users",
        [userId],
      );
      if (!rows[0]?.is) throw new NotFoundError("User", userId);
      if (rows[0].n <= 1)
        throw new ConflictError("last_platform_admin", "this is the last platform admin: make another user platform admin first, or no one could manage teams");
      await c.query("UPDATE users SET platform_admin = false WHERE id = $1", [userId]);
      if (by !== "operator") await audit(c, by, "platform_admin.revoke", userId);
    });
  }

  private async lock(c: PoolClient, id: string): Promise<{ slug: string; name: string }> {
    if (!isUuid(id)) throw new NotFoundError("Team", id);
    const { rows } = await c.query<{ slug: string; name: string }>("SELECT slug, name FROM teams WHERE id = $1 FOR UPDATE", [id]);
    if (!rows[0]) throw new NotFoundError("Team", id);
    return rows[0];
  }

  /** Platform changes are audited in the log of the team they change, by the platform admin acting. */
  private async auditRow(c: PoolClient, by: PlatformCaller, teamId: string, action: string, details: Record<string, unknown>): Promise<void> {
    const p: Principal = by === "operator" ? { teamId, role: "admin", actor: "cli", userId: null, apiKeyId: null } : { ...by, teamId };
    await audit(c, p, action, teamId, details);
  }

  private async tx(by: PlatformCaller, fn: (c: PoolClient) => Promise<{ id: string; audit: [string, Record<string, unknown>] }>): Promise<TeamInfo> {
    try {
      return await withTransaction(this.o.pool, async (c) => {
        const r = await fn(c);
        await this.auditRow(c, by, r.id, r.audit[0], r.audit[1]);
        const { rows } = await c.query<TeamInfo>(`SELECT ${TEAM_COLUMNS} FROM teams t WHERE t.id = $1`, [r.id]);
        return rows[0]!;
      });
    } catch (err) {
      if (pgCode(err) === PgCode.uniqueViolation) throw new ConflictError("team_exists", "a team with this slug exists");
      throw err;
    }
  }
}
