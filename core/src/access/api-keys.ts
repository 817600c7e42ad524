// API keys: random 256-bit values, only their SHA-256 stored. Each key records the member who
// created it (a key made with a key records that key's creator) and stops working when that
// member leaves the team or loses the role the key has: revoked in the same transaction as the
// membership change, and checked again at every authentication (a membership changed by hand in
// the database counts too).
import { createHash, randomBytes } from "node:crypto";
import type { Pool, PoolClient } from "../db/pool.js";
import { isUuid } from "../engine/client.js";
import { ForbiddenError, NotFoundError, TeamSuspendedError, UnauthorizedError, ValidationError } from "../errors.js";
import { ROLES, requireRole, type Principal, type Role } from "./principal.js";
import { audited } from "../audit.js";

export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
export const randomToken = (prefix: string) => `${prefix}${randomBytes(32).toString("base64url")}`;

export type ApiKeyRevokedReason = "revoked" | "creator_removed" | "creator_demoted";
export type ApiKeyInfo = {
  id: string;
  name: string;
  prefix: string;
  role: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  revokedReason: ApiKeyRevokedReason | null;
  platform: boolean;
  /** null for keys created before creators were recorded. */
  createdBy: { userId: string; email: string } | null;
};

// Role rank in SQL, in ROLES order (viewer < member < admin).
const RANK = (col: string) => `array_position(ARRAY['viewer','member','admin']::text[], ${col})`;

export async function createApiKey(
  pool: Pool,
  p: Principal,
  input: { name: string; role: Role; platform?: boolean },
): Promise<{ id: string; key: string; prefix: string; role: Role; platform: boolean }> {
  requireRole(p, "admin");
  const platform = input.platform === true;
  if (platform && !p.platformAdmin) throw new ForbiddenError("only a platform admin can create a platform key");
  if (!ROLES.includes(input.role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
  if (!input.name || input.name.length > 100) throw new ValidationError("name must be 1 to 100 characters");
  const key = randomToken("kk_");
  const prefix = key.slice(0, 10);
  return audited(
    pool,
    p,
    async (c) => {
      const { rows } = await c.query<{ id: string }>(
        `INSERT INTO api_keys (team_id, name, prefix, hash, role, created_by_user_id, platform)
       VALUES ($1, $2, $3, $4, $5, COALESCE($6::uuid, (SELECT created_by_user_id FROM api_keys WHERE id = $7::uuid AND team_id = $1)), $8)
       RETURNING id`,
        [p.teamId, input.name, prefix, sha256(key), input.role, p.userId, p.apiKeyId, platform],
      );
      return { id: rows[0]!.id, key, prefix, role: input.role, platform };
    },
    (r) => ({ action: "api_key.create", target: r.id, details: { name: input.name, role: r.role, prefix: r.prefix, platform } }),
  ); // never the key
}

export async function listApiKeys(pool: Pool, p: Principal): Promise<ApiKeyInfo[]> {
  requireRole(p, "admin");
  const { rows } = await pool.query(
    `SELECT k.id, k.name, k.prefix, k.role, k.created_at AS "createdAt", k.last_used_at AS "lastUsedAt", k.revoked_at AS "revokedAt",
            k.revoked_reason AS "revokedReason", k.platform,
            CASE WHEN u.id IS NULL THEN NULL ELSE json_build_object('userId', u.id, 'email', u.email) END AS "createdBy"
     FROM api_keys k LEFT JOIN users u ON u.id = k.created_by_user_id
     WHERE k.team_id = $1 ORDER BY k.created_at DESC`,
    [p.teamId],
  );
  return rows as ApiKeyInfo[];
}

export async function revokeApiKey(pool: Pool, p: Principal, id: string): Promise<void> {
  requireRole(p, "admin");
  if (!isUuid(id)) throw new NotFoundError("ApiKey", id);
  await audited(
    pool,
    p,
    async (c) => {
      const res = await c.query("UPDATE api_keys SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL", [
        id,
        p.teamId,
      ]);
      if (res.rowCount !== 1) throw new NotFoundError("ApiKey", id);
    },
    () => ({ action: "api_key.revoke", target: id }),
  );
}

/**
 * The key's principal, if the key is live and its creator is still a member with at least the
 * key's role. `touch: false` skips the last-used write (SSE streams re-check every heartbeat).
 * A live key of a suspended team: 403 team_suspended with the reason. A platform key is a platform
 * admin's while its creator still is one.
 */
export async function authenticateApiKey(pool: Pool, key: string, opts: { touch?: boolean } = {}): Promise<Principal> {
  const live = `k.hash = $1 AND k.revoked_at IS NULL AND (k.created_by_user_id IS NULL OR EXISTS (
      SELECT 1 FROM memberships m WHERE m.team_id = k.team_id AND m.user_id = k.created_by_user_id AND ${RANK("m.role")} >= ${RANK("k.role")}))`;
  // The suspension is read in the same statement; last_used_at is not written for a refused key.
  const sql =
    opts.touch === false
      ? `SELECT k.id, k.team_id, k.role, k.prefix, k.platform, k.created_by_user_id FROM api_keys k WHERE ${live}`
      : `UPDATE api_keys k SET last_used_at = now() WHERE ${live} AND NOT EXISTS (SELECT 1 FROM teams s WHERE s.id = k.team_id AND s.suspended_at IS NOT NULL)
         RETURNING k.id, k.team_id, k.role, k.prefix, k.platform, k.created_by_user_id`;
  type Row = {
    id: string;
    team_id: string;
    role: Role;
    prefix: string;
    platform: boolean;
    slug: string;
    suspended_at: Date | null;
    suspended_reason: string | null;
    creator_platform: boolean;
  };
  const { rows } = await pool.query<Row>(
    `WITH k AS (${sql}) SELECT k.*, t.slug, t.suspended_at, t.suspended_reason, coalesce(u.platform_admin, false) AS creator_platform
     FROM k JOIN teams t ON t.id = k.team_id LEFT JOIN users u ON u.id = k.created_by_user_id`,
    [sha256(key)],
  );
  const k = rows[0];
  if (!k) {
    // A live key whose team is suspended was left out by the UPDATE: say why.
    const s = await pool.query<{ slug: string; suspended_at: Date; suspended_reason: string | null }>(
      `SELECT t.slug, t.suspended_at, t.suspended_reason FROM api_keys k JOIN teams t ON t.id = k.team_id WHERE ${live} AND t.suspended_at IS NOT NULL`,
      [sha256(key)],
    );
    if (s.rows[0]) throw new TeamSuspendedError({ slug: s.rows[0].slug, reason: s.rows[0].suspended_reason, suspendedAt: s.rows[0].suspended_at });
    throw new UnauthorizedError("invalid or revoked API key");
  }
  if (k.suspended_at) throw new TeamSuspendedError({ slug: k.slug, reason: k.suspended_reason, suspendedAt: k.suspended_at });
  return { teamId: k.team_id, role: k.role, actor: `api_key:${k.prefix}`, userId: null, apiKeyId: k.id, platformAdmin: k.platform && k.creator_platform };
}

/**
 * Revokes a member's keys inside a membership change: all of them when they leave, or those whose
 * role is above their new one when demoted. Returns how many.
 */
export async function revokeKeysOfCreator(c: PoolClient, teamId: string, userId: string, change: { removed: true } | { newRole: Role }): Promise<number> {
  const removed = "removed" in change;
  const res = await c.query(
    `UPDATE api_keys SET revoked_at = now(), revoked_reason = $3
     WHERE team_id = $1 AND created_by_user_id = $2 AND revoked_at IS NULL AND ($4::text IS NULL OR ${RANK("role")} > ${RANK("$4::text")})`,
    [teamId, userId, removed ? "creator_removed" : "creator_demoted", removed ? null : change.newRole],
  );
  return res.rowCount ?? 0;
}
