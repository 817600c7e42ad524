// Invitations by link and the teams of one user. An invitation is a random 256-bit token (shown
// once, in the link; only its SHA-256 is stored) for one email, one team and one role: single use
// (accepted_at), expiring (expires_at), revocable. Accepting sets a new person's password, or
// joins an existing account (which proves itself with its own password) to the team: Accounts.
import { randomUUID } from "node:crypto";
import { ConflictError, KeelError, NotFoundError, TeamSuspendedError, ValidationError } from "../errors.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { isUuid } from "../engine/client.js";
import { audit, audited } from "../audit.js";
import { ROLES, requireRole, type Principal, type Role } from "./principal.js";
import { randomToken, sha256 } from "./api-keys.js";
import { normalizeEmail } from "./passwords.js";

const DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000;

export type Invitation = { id: string; email: string; role: Role; createdBy: string; createdAt: Date; expiresAt: Date; expired: boolean };
export type InvitationPreview = { email: string; role: Role; teamSlug: string; teamName: string; expiresAt: Date; existingAccount: boolean };
export type MyTeam = { teamId: string; slug: string; name: string; role: Role; suspended: boolean; current: boolean };

class InvitationGoneError extends KeelError {
  constructor(code: "invitation_used" | "invitation_expired" | "invitation_revoked", message: string) {
    super(code, 410, message);
  }
}

/** Creates an invitation to `p`'s team (admins, or a platform admin acting for a team). The token is in this answer only. */
export async function createInvitation(
  pool: Pool,
  p: Principal,
  input: { email: string; role: Role; ttlMs?: number },
): Promise<{ id: string; token: string; email: string; role: Role; expiresAt: Date }> {
  requireRole(p, "admin");
  if (!ROLES.includes(input.role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
  const email = normalizeEmail(input.email);
  const token = randomToken("ki_");
  const id = randomUUID();
  const expiresAt = new Date(Date.now() + (input.ttlMs ?? DEFAULT_TTL_MS));
  await audited(
    pool,
    p,
    (c) =>
      c.query("INSERT INTO invitations (id, team_id, email, role, token_hash, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
        id,
        p.teamId,
        email,
        input.role,
        sha256(token),
        p.actor,
        expiresAt,
      ]),
    () => ({ action: "invitation.create", target: id, details: { email, role: input.role } }),
  ); // never the token
  return { id, token, email, role: input.role, expiresAt };
}

/** Invitations not yet accepted or revoked (expired ones too, marked), newest first; admins. */
export async function listInvitations(pool: Pool, p: Principal): Promise<Invitation[]> {
  requireRole(p, "admin");
  const { rows } = await pool.query<Invitation>(
    `SELECT id, email, role, created_by AS "createdBy", created_at AS "createdAt", expires_at AS "expiresAt", expires_at <= now() AS expired
     FROM invitations WHERE team_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 200`,
    [p.teamId],
  );
  return rows;
}

export async function revokeInvitation(pool: Pool, p: Principal, id: string): Promise<void> {
  requireRole(p, "admin");
  if (!isUuid(id)) throw new NotFoundError("Invitation", id);
  await audited(
    pool,
    p,
    async (c) => {
      const res = await c.query("UPDATE invitations SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL", [
        id,
        p.teamId,
      ]);
      if (res.rowCount !== 1) throw new NotFoundError("Invitation", id);
    },
    () => ({ action: "invitation.revoke", target: id }),
  );
}

/** What a token invites to; a used, expired or revoked one: 410 saying which; unknown: 404. */
export async function lookupInvitation(pool: Pool, token: string): Promise<InvitationPreview> {
  const { rows } = await pool.query<{
    email: string;
    role: Role;
    slug: string;
    name: string;
    expires_at: Date;
    accepted_at: Date | null;
    revoked_at: Date | null;
    expired: boolean;
    suspended_at: Date | null;
    suspended_reason: string | null;
    existing: boolean;
  }>(
    `SELECT i.email, i.role, t.slug, t.name, i.expires_at, i.accepted_at, i.revoked_at, i.expires_at <= now() AS expired,
            t.suspended_at, t.suspended_reason, EXISTS (SELECT 1 FROM users u WHERE u.email = i.email) AS existing
     FROM invitations i JOIN teams t ON t.id = i.team_id WHERE i.token_hash = $1`,
    [sha256(String(token ?? ""))],
  );
  const i = rows[0];
  if (!i) throw new KeelError("invitation_not_found", 404, "this invitation link is not valid; ask for a new one");
  if (i.accepted_at) throw new InvitationGoneError("invitation_used", "this invitation was already used; log in, or ask for a new one");
  if (i.revoked_at) throw new InvitationGoneError("invitation_revoked", "this invitation was withdrawn; ask for a new one");
  if (i.expired) throw new InvitationGoneError("invitation_expired", "this invitation has expired; ask for a new one");
  if (i.suspended_at) throw new TeamSuspendedError({ slug: i.slug, reason: i.suspended_reason, suspendedAt: i.suspended_at });
  return { email: i.email, role: i.role, teamSlug: i.slug, teamName: i.name, expiresAt: i.expires_at, existingAccount: i.existing };
}

/**
 * Marks the invitation used and joins its email to the team, in one transaction: of two accepts
 * at once, one wins and the other gets 410 invitation_used. `passwordHash`: the new account's
 * (null when the caller checked an existing account's password). Already a member: keeps its role.
 */
export async function consumeInvitation(pool: Pool, token: string, passwordHash: string | null): Promise<{ teamId: string; userId: string; role: Role }> {
  const out = await withTransaction(pool, async (c) => {
    const { rows } = await c.query<{ id: string; team_id: string; email: string; role: Role }>(
      `UPDATE invitations SET accepted_at = now() WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
       RETURNING id, team_id, email, role`,
      [sha256(token)],
    );
    const inv = rows[0];
    if (!inv) return null; // lost a race, or expired meanwhile: lookup says which (after the rollback)
    let userId: string | undefined;
    if (passwordHash) {
      userId = (
        await c.query<{ id: string }>("INSERT INTO users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id", [
          inv.email,
          passwordHash,
        ])
      ).rows[0]?.id;
      if (!userId) throw new ConflictError("account_exists", "an account with this email was just created; accept again with its password");
    } else {
      userId = (await c.query<{ id: string }>("SELECT id FROM users WHERE email = $1", [inv.email])).rows[0]?.id;
      if (!userId) throw new ConflictError("account_gone", "the account of this email no longer exists; accept again to create it");
    }
    const m = await c.query<{ role: Role }>(
      `INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, $3)
       ON CONFLICT (team_id, user_id) DO UPDATE SET role = memberships.role RETURNING role`,
      [inv.team_id, userId, inv.role],
    );
    const role = m.rows[0]!.role;
    await audit(c, { teamId: inv.team_id, role, actor: `user:${inv.email}`, userId, apiKeyId: null }, "member.join", userId, { invitationId: inv.id, role });
    return { teamId: inv.team_id, userId, role };
  });
  if (!out) {
    await lookupInvitation(pool, token); // throws the reason
    throw new KeelError("invitation_used", 410, "this invitation was already used; log in, or ask for a new one");
  }
  return out;
}

/** The caller's teams: a user's memberships, or a key's own team. */
export async function myTeams(pool: Pool, p: Principal): Promise<MyTeam[]> {
  if (p.userId === null || p.apiKeyId !== null) {
    const t = await pool.query<{ slug: string; name: string }>("SELECT slug, name FROM teams WHERE id = $1", [p.teamId]);
    return [{ teamId: p.teamId, slug: t.rows[0]!.slug, name: t.rows[0]!.name, role: p.role, suspended: false, current: true }];
  }
  const { rows } = await pool.query<MyTeam>(
    `SELECT t.id AS "teamId", t.slug, t.name, m.role, t.suspended_at IS NOT NULL AS suspended, t.id = $2 AS current
     FROM memberships m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 ORDER BY m.created_at`,
    [p.userId, p.teamId],
  );
  return rows;
}

/** Points one dashboard login (by its token's hash) at another team of the same user. */
export async function switchTeam(pool: Pool, p: Principal, tokenHash: string, teamId: string): Promise<Principal> {
  if (!isUuid(teamId)) throw new NotFoundError("Team", teamId);
  return withTransaction(pool, async (c) => {
    const { rows } = await c.query<{ role: Role; slug: string; suspended_at: Date | null; suspended_reason: string | null }>(
      `SELECT m.role, t.slug, t.suspended_at, t.suspended_reason FROM memberships m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 AND m.team_id = $2`,
      [p.userId, teamId],
    );
    const m = rows[0];
    if (!m) throw new NotFoundError("Team", teamId);
    if (m.suspended_at) throw new TeamSuspendedError({ slug: m.slug, reason: m.suspended_reason, suspendedAt: m.suspended_at });
    await c.query("UPDATE web_sessions SET team_id = $2 WHERE token_hash = $1 AND user_id = $3", [tokenHash, teamId, p.userId]);
    const next: Principal = { ...p, teamId, role: m.role };
    await audit(c, next, "auth.switch_team", p.userId, { from: p.teamId });
    return next;
  });
}
