// Users, dashboard logins (cookie sessions with a CSRF token), API keys and members.
// Tokens and keys are random 256-bit values; only their SHA-256 is stored.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { ConflictError, ForbiddenError, KeelError, NotFoundError, TeamSuspendedError, UnauthorizedError, ValidationError } from "../errors.js";
import { PgCode, pgCode, withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { isUuid } from "../engine/client.js";
import { hashPassword, normalizeEmail, validatePassword, verifyPassword } from "./passwords.js";
import { ROLES, requireRole, type Principal, type Role } from "./principal.js";
import * as keys from "./api-keys.js";
import { audit, audited } from "../audit.js";
import { checkLoginLimits, pruneLoginAttempts, recordLoginFailure, type LoginLimits } from "./login-limits.js";
import * as invitations from "./invitations.js";

export { TooManyAttemptsError } from "./login-limits.js";
const { sha256, randomToken } = keys;

export type AccountsOptions = {
  pool: Pool;
  sessionTtlMs?: number;
  /** Failed logins per (account, client address) in the window; default 10. */
  maxFailedLogins?: number;
  /** Failed logins per client address over all accounts in the window; default 50. */
  maxFailedLoginsPerAddress?: number;
  failedLoginWindowMs?: number;
  /** How long an invitation link works; default 7 days. */
  invitationTtlMs?: number;
};
export type LoginResult = { token: string; csrfToken: string; expiresAt: Date; principal: Principal };

export class Accounts {
  private readonly ttlMs: number;
  private readonly limits: LoginLimits;
  constructor(private readonly o: AccountsOptions) {
    this.ttlMs = o.sessionTtlMs ?? 7 * 24 * 3600 * 1000;
    this.limits = {
      windowMs: o.failedLoginWindowMs ?? 15 * 60_000,
      maxPerAccountAddress: o.maxFailedLogins ?? 10,
      maxPerAddress: o.maxFailedLoginsPerAddress ?? 50,
    };
  }

  /**
   * First start: creates the team and its admin if no user has that email yet. Idempotent. That
   * user becomes the first platform admin if nobody is one yet (also on a deployment from before
   * platform admins); later platform admins are named by a platform admin or the CLI.
   */
  async bootstrapAdmin(input: { email: string; password: string; teamSlug: string; teamName: string }): Promise<{ created: boolean; teamId: string }> {
    validatePassword(input.password);
    return withTransaction(this.o.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(7270001)"); // two web replicas starting at once
      const team = await c.query<{ id: string }>(
        "INSERT INTO teams (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id",
        [input.teamSlug, input.teamName],
      );
      const teamId = team.rows[0]!.id;
      const existing = await c.query("SELECT 1 FROM users WHERE email = $1", [normalizeEmail(input.email)]);
      if (existing.rowCount) {
        await c.query("UPDATE users SET platform_admin = true WHERE email = $1 AND NOT EXISTS (SELECT 1 FROM users WHERE platform_admin)", [
          normalizeEmail(input.email),
        ]);
        return { created: false, teamId };
      }
      const user = await c.query<{ id: string }>(
        "INSERT INTO users (email, password_hash, platform_admin) VALUES ($1, $2, NOT EXISTS (SELECT 1 FROM users WHERE platform_admin)) RETURNING id",
        [normalizeEmail(input.email), await hashPassword(input.password)],
      );
      await c.query("INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, 'admin')", [teamId, user.rows[0]!.id]);
      return { created: true, teamId };
    });
  }

  /**
   * Checks the password and opens a session. Failures are limited per (account, client address)
   * and per client address (login-limits.ts): past either limit the answer is 429 whether or not
   * the password is right, but only for the address that failed. A wrong email costs as much
   * time as a wrong password. `clientAddress` must come from the socket (client-address.ts).
   */
  async login(input: { email: string; password: string; clientAddress: string }): Promise<LoginResult> {
    const email = normalizeEmail(input.email);
    await checkLoginLimits(this.o.pool, email, input.clientAddress, this.limits);
    // The team joined first that is not suspended (the dashboard's switcher changes it after).
    const { rows } = await this.o.pool.query<{
      id: string;
      password_hash: string;
      platform_admin: boolean;
      team_id: string;
      role: Role;
      slug: string;
      suspended_at: Date | null;
      suspended_reason: string | null;
    }>(
      `SELECT u.id, u.password_hash, u.platform_admin, m.team_id, m.role, t.slug, t.suspended_at, t.suspended_reason
       FROM users u JOIN memberships m ON m.user_id = u.id JOIN teams t ON t.id = m.team_id
       WHERE u.email = $1 ORDER BY t.suspended_at IS NOT NULL, m.created_at LIMIT 1`,
      [email],
    );
    const u = rows[0];
    const ok = await verifyPassword(input.password, u?.password_hash ?? DUMMY_HASH);
    if (!u || !ok) {
      await recordLoginFailure(this.o.pool, email, input.clientAddress);
      throw new UnauthorizedError("wrong email or password");
    }
    if (u.suspended_at) throw new TeamSuspendedError({ slug: u.slug, reason: u.suspended_reason, suspendedAt: u.suspended_at });
    return this.openSession({ teamId: u.team_id, role: u.role, actor: `user:${email}`, userId: u.id, apiKeyId: null, platformAdmin: u.platform_admin });
  }

  /** A new dashboard login for a checked user (after a password, or an accepted invitation). */
  private async openSession(principal: Principal & { userId: string }, action = "auth.login"): Promise<LoginResult> {
    const t = randomToken("ks_");
    const csrfToken = randomBytes(24).toString("base64url");
    const expiresAt = new Date(Date.now() + this.ttlMs);
    await audited(
      this.o.pool,
      principal,
      async (c) => {
        await c.query("INSERT INTO web_sessions (user_id, team_id, token_hash, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)", [
          principal.userId,
          principal.teamId,
          sha256(t),
          csrfToken,
          expiresAt,
        ]);
      },
      () => ({ action, target: principal.userId }),
    );
    return { token: t, csrfToken, expiresAt, principal };
  }

  /** Forgets failed logins older than the limits' window (the web process calls this periodically). */
  pruneLoginAttempts(): Promise<number> {
    return pruneLoginAttempts(this.o.pool, this.limits.windowMs);
  }

  async logout(sessionToken: string): Promise<void> {
    await this.o.pool.query("DELETE FROM web_sessions WHERE token_hash = $1", [sha256(sessionToken)]);
  }

  /**
   * Resolves a session cookie. For state-changing requests pass the CSRF header to check it. The
   * membership and the team's suspension are read at every request: a removed member is out at
   * once, a suspended team's logins answer 403 team_suspended with the reason.
   */
  async authenticateSession(sessionToken: string, csrf?: { required: boolean; header: string | null }): Promise<Principal & { csrfToken: string }> {
    const { rows } = await this.o.pool.query<{
      user_id: string;
      team_id: string;
      csrf_token: string;
      email: string;
      role: Role;
      platform_admin: boolean;
      slug: string;
      suspended_at: Date | null;
      suspended_reason: string | null;
    }>(
      `SELECT s.user_id, s.team_id, s.csrf_token, u.email, m.role, u.platform_admin, t.slug, t.suspended_at, t.suspended_reason FROM web_sessions s
       JOIN users u ON u.id = s.user_id JOIN memberships m ON m.user_id = s.user_id AND m.team_id = s.team_id JOIN teams t ON t.id = s.team_id
       WHERE s.token_hash = $1 AND s.expires_at > now()`,
      [sha256(sessionToken)],
    );
    const s = rows[0];
    if (!s) throw new UnauthorizedError("your session has expired; log in again");
    if (csrf?.required && !safeEqual(csrf.header ?? "", s.csrf_token)) throw new KeelError("csrf_failed", 403, "missing or wrong X-CSRF-Token header");
    if (s.suspended_at) throw new TeamSuspendedError({ slug: s.slug, reason: s.suspended_reason, suspendedAt: s.suspended_at });
    return {
      teamId: s.team_id,
      role: s.role,
      actor: `user:${s.email}`,
      userId: s.user_id,
      apiKeyId: null,
      platformAdmin: s.platform_admin,
      csrfToken: s.csrf_token,
    };
  }

  /** The teams the caller belongs to (a key: its own team), the current one marked. */
  async myTeams(p: Principal): Promise<invitations.MyTeam[]> {
    return invitations.myTeams(this.o.pool, p);
  }

  /**
   * Moves this dashboard login to another team of the user's (the team switcher). Not a member:
   * 404 like a missing team; a suspended team: 403 team_suspended. API keys cannot: a key belongs
   * to one team (create one in the other team).
   */
  async switchTeam(p: Principal, sessionToken: string | null, teamId: string): Promise<Principal> {
    if (!p.userId || p.apiKeyId || !sessionToken) throw new ForbiddenError("only a dashboard login can switch teams; an API key belongs to one team");
    return invitations.switchTeam(this.o.pool, p, sha256(sessionToken), teamId);
  }

  /** Invitations by link: the token is in the answer once; only its SHA-256 is stored. */
  createInvitation(by: Principal, input: { email: string; role: Role }) {
    return invitations.createInvitation(this.o.pool, by, { email: input.email, role: input.role, ttlMs: this.o.invitationTtlMs });
  }

  listInvitations(p: Principal) {
    return invitations.listInvitations(this.o.pool, p);
  }

  revokeInvitation(p: Principal, id: string) {
    return invitations.revokeInvitation(this.o.pool, p, id);
  }

  /** What an invitation link is for, before accepting (the token is the credential). */
  lookupInvitation(token: string) {
    return invitations.lookupInvitation(this.o.pool, token);
  }

  /**
   * Accepts an invitation: a new email sets its password here; an existing account proves itself
   * with its own password (failures limited like logins) and joins the team. Single use: a second
   * accept answers 410 invitation_used. Logs the person in to the team they joined.
   */
  async acceptInvitation(input: { token: string; password: string; clientAddress: string }): Promise<LoginResult> {
    const inv = await invitations.lookupInvitation(this.o.pool, input.token);
    await checkLoginLimits(this.o.pool, inv.email, input.clientAddress, this.limits);
    const user = (
      await this.o.pool.query<{ id: string; password_hash: string; platform_admin: boolean }>(
        "SELECT id, password_hash, platform_admin FROM users WHERE email = $1",
        [inv.email],
      )
    ).rows[0];
    if (user && !(await verifyPassword(String(input.password ?? ""), user.password_hash))) {
      await recordLoginFailure(this.o.pool, inv.email, input.clientAddress);
      throw new KeelError("wrong_password", 403, "this email already has an account: enter its password to join the team");
    }
    if (!user) validatePassword(input.password);
    const hash = user ? null : await hashPassword(input.password);
    const joined = await invitations.consumeInvitation(this.o.pool, input.token, hash);
    return this.openSession(
      {
        teamId: joined.teamId,
        role: joined.role,
        actor: `user:${inv.email}`,
        userId: joined.userId,
        apiKeyId: null,
        platformAdmin: user?.platform_admin ?? false,
      },
      "invitation.accept",
    );
  }

  /**
   * A logged-in user changes their own password (API keys cannot: they act for a team, not a
   * person). The current password is checked and its failures are limited like logins; the
   * user's other dashboard logins end, the one in `keepSessionToken` stays.
   */
  async changePassword(p: Principal, input: { currentPassword: string; newPassword: string; keepSessionToken?: string | null }): Promise<void> {
    if (!p.userId || p.apiKeyId) throw new ForbiddenError("only a logged-in user can change their password; API keys cannot");
    validatePassword(input.newPassword);
    // Both buckets per user: a stolen session cannot guess the current password for long, and one
    // user's failures never block another's change.
    const bucket = `password-change:${p.userId}`;
    await checkLoginLimits(this.o.pool, "self", bucket, this.limits);
    const { rows } = await this.o.pool.query<{ password_hash: string }>("SELECT password_hash FROM users WHERE id = $1", [p.userId]);
    if (!rows[0] || !(await verifyPassword(String(input.currentPassword ?? ""), rows[0].password_hash))) {
      await recordLoginFailure(this.o.pool, "self", bucket);
      throw new KeelError("wrong_password", 403, "the current password is wrong");
    }
    const hash = await hashPassword(input.newPassword);
    await audited(
      this.o.pool,
      p,
      async (c) => {
        await c.query("UPDATE users SET password_hash = $2 WHERE id = $1", [p.userId, hash]);
        await c.query("DELETE FROM web_sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2", [
          p.userId,
          input.keepSessionToken ? sha256(input.keepSessionToken) : null,
        ]);
      },
      () => ({ action: "user.password", target: p.userId }),
    );
  }

  /** Creates an API key for the caller's team, recording its creator; the key is returned once. */
  createApiKey(p: Principal, input: { name: string; role: Role; platform?: boolean }) {
    return keys.createApiKey(this.o.pool, p, input);
  }

  listApiKeys(p: Principal) {
    return keys.listApiKeys(this.o.pool, p);
  }

  revokeApiKey(p: Principal, id: string) {
    return keys.revokeApiKey(this.o.pool, p, id);
  }

  authenticateApiKey(key: string, opts?: { touch?: boolean }) {
    return keys.authenticateApiKey(this.o.pool, key, opts);
  }

  async listMembers(p: Principal): Promise<{ userId: string; email: string; role: string; createdAt: Date }[]> {
    const { rows } = await this.o.pool.query(
      `SELECT u.id AS "userId", u.email, m.role, m.created_at AS "createdAt" FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.team_id = $1 ORDER BY m.created_at`,
      [p.teamId],
    );
    return rows;
  }

  /**
   * Adds a member; admins only. A new email gets an account with this first password. An email
   * that already has an account (in another team) joins with its own password, which is never
   * replaced: the answer is the same either way, so adding a member reveals no other team's
   * users. Already a member of this team: 409 (the member list shows them anyway).
   */
  async addMember(p: Principal, input: { email: string; password: string; role: Role }): Promise<{ userId: string }> {
    requireRole(p, "admin");
    if (!ROLES.includes(input.role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
    validatePassword(input.password);
    const email = normalizeEmail(input.email);
    const hash = await hashPassword(input.password); // hashed either way: both answers take as long
    try {
      return await audited(
        this.o.pool,
        p,
        async (c) => {
          const fresh = await c.query<{ id: string }>("INSERT INTO users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id", [
            email,
            hash,
          ]);
          const userId = fresh.rows[0]?.id ?? (await c.query<{ id: string }>("SELECT id FROM users WHERE email = $1", [email])).rows[0]!.id;
          await c.query("INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, $3)", [p.teamId, userId, input.role]);
          return { userId };
        },
        (r) => ({ action: "member.add", target: r.userId, details: { email: input.email, role: input.role } }),
      ); // the email as given; never the password
    } catch (err) {
      if (pgCode(err) === PgCode.uniqueViolation) throw new ConflictError("member_exists", "this email is already a member of the team", { email });
      throw err;
    }
  }

  /**
   * Changes a member's role; admins only. A team never loses its last admin. Their API keys with
   * a role above the new one are revoked in the same transaction.
   */
  async setMemberRole(p: Principal, userId: string, role: Role): Promise<{ userId: string; role: Role; keysRevoked: number }> {
    requireRole(p, "admin");
    if (!ROLES.includes(role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
    return this.changeMember(p, userId, async (c, current) => {
      if (current === "admin" && role !== "admin") await this.keepAnAdmin(c, p.teamId, "demote");
      await c.query("UPDATE memberships SET role = $3 WHERE team_id = $1 AND user_id = $2", [p.teamId, userId, role]);
      const keysRevoked = await keys.revokeKeysOfCreator(c, p.teamId, userId, { newRole: role });
      await audit(c, p, "member.role", userId, { role, keysRevoked });
      return { userId, role, keysRevoked };
    });
  }

  /**
   * Removes a member from the team; admins only. Their dashboard logins to this team end at once
   * (every request re-reads the membership; the sessions are deleted too) and the API keys they
   * created are revoked, in one transaction. The user account stays (it may belong to other
   * teams). A team never loses its last admin.
   */
  async removeMember(p: Principal, userId: string): Promise<{ keysRevoked: number }> {
    requireRole(p, "admin");
    return this.changeMember(p, userId, async (c, current) => {
      if (current === "admin") await this.keepAnAdmin(c, p.teamId, "remove");
      await c.query("DELETE FROM memberships WHERE team_id = $1 AND user_id = $2", [p.teamId, userId]);
      await c.query("DELETE FROM web_sessions WHERE team_id = $1 AND user_id = $2", [p.teamId, userId]);
      const keysRevoked = await keys.revokeKeysOfCreator(c, p.teamId, userId, { removed: true });
      await audit(c, p, "member.remove", userId, { keysRevoked });
      return { keysRevoked };
    });
  }

  /**
   * Runs a membership change under the team's member lock (two admins demoting each other at
   * once must not leave the team without one). Another team's member answers 404 like a missing one.
   */
  private async changeMember<T>(p: Principal, userId: string, fn: (c: PoolClient, current: Role) => Promise<T>): Promise<T> {
    if (!isUuid(userId)) throw new NotFoundError("Member", userId);
    return withTransaction(this.o.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(7270002, hashtext($1))", [p.teamId]);
      const { rows } = await c.query<{ role: Role }>("SELECT role FROM memberships WHERE team_id = $1 AND user_id = $2", [p.teamId, userId]);
      if (!rows[0]) throw new NotFoundError("Member", userId);
      return fn(c, rows[0].role);
    });
  }

  private async keepAnAdmin(c: PoolClient, teamId: string, what: "demote" | "remove"): Promise<void> {
    const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM memberships WHERE team_id = $1 AND role = 'admin'", [teamId]);
    if (rows[0]!.n <= 1) throw new ConflictError("last_admin", `cannot ${what} the team's last admin; make another member admin first`);
  }
}

// Verifying against a fixed hash when the email is unknown keeps both answers equally slow.
const DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
