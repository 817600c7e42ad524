// Users, dashboard logins (cookie sessions with a CSRF token), API keys and members.
// Tokens and keys are random 256-bit values; only their SHA-256 is stored.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ConflictError, KeelError, NotFoundError, UnauthorizedError, ValidationError } from "../errors.js";
import { PgCode, pgCode, withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { isUuid } from "../engine/client.js";
import { hashPassword, verifyPassword } from "./passwords.js";
import { ROLES, requireRole, type Principal, type Role } from "./principal.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const token = (prefix: string) => `${prefix}${randomBytes(32).toString("base64url")}`;

export class TooManyAttemptsError extends KeelError {
  constructor(retryAfterS: number) {
    super("too_many_attempts", 429, `too many failed logins; try again in ${retryAfterS} s`, { retryAfterS });
  }
}

export type AccountsOptions = { pool: Pool; sessionTtlMs?: number; maxFailedLogins?: number; failedLoginWindowMs?: number };
export type LoginResult = { token: string; csrfToken: string; expiresAt: Date; principal: Principal };

export class Accounts {
  private readonly ttlMs: number;
  constructor(private readonly o: AccountsOptions) {
    this.ttlMs = o.sessionTtlMs ?? 7 * 24 * 3600 * 1000;
  }

  /** First start: creates the team and its admin if no user has that email yet. Idempotent. */
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
      if (existing.rowCount) return { created: false, teamId };
      const user = await c.query<{ id: string }>("INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id", [normalizeEmail(input.email), await hashPassword(input.password)]);
      await c.query("INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, 'admin')", [teamId, user.rows[0]!.id]);
      return { created: true, teamId };
    });
  }

  /**
   * Checks the password and opens a session. Failed attempts are counted in Postgres per email
   * and per client address (so every web replica sees them); past the limit the answer is 429
   * whether or not the password is right, and a wrong email costs as much time as a wrong password.
   */
  async login(input: { email: string; password: string; clientAddress: string }): Promise<LoginResult> {
    const email = normalizeEmail(input.email);
    const windowMs = this.o.failedLoginWindowMs ?? 15 * 60_000;
    const max = this.o.maxFailedLogins ?? 10;
    const keys = [`email:${email}`, `addr:${input.clientAddress}`];
    const { rows: counts } = await this.o.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM login_attempts WHERE key = ANY($1) AND created_at > now() - $2 * interval '1 millisecond' GROUP BY key ORDER BY 1 DESC LIMIT 1",
      [keys, windowMs],
    );
    if ((counts[0]?.n ?? 0) >= max) throw new TooManyAttemptsError(Math.ceil(windowMs / 1000));
    const { rows } = await this.o.pool.query<{ id: string; password_hash: string; team_id: string; role: Role }>(
      `SELECT u.id, u.password_hash, m.team_id, m.role FROM users u JOIN memberships m ON m.user_id = u.id
       WHERE u.email = $1 ORDER BY m.created_at LIMIT 1`,
      [email],
    );
    const u = rows[0];
    const ok = await verifyPassword(input.password, u?.password_hash ?? DUMMY_HASH);
    if (!u || !ok) {
      await this.o.pool.query("INSERT INTO login_attempts (key) SELECT unnest($1::text[])", [keys]);
      throw new UnauthorizedError("wrong email or password");
    }
    const t = token("ks_");
    const csrfToken = randomBytes(24).toString("base64url");
    const expiresAt = new Date(Date.now() + this.ttlMs);
    await this.o.pool.query("INSERT INTO web_sessions (user_id, team_id, token_hash, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)", [u.id, u.team_id, sha256(t), csrfToken, expiresAt]);
    return { token: t, csrfToken, expiresAt, principal: { teamId: u.team_id, role: u.role, actor: `user:${email}`, userId: u.id, apiKeyId: null } };
  }

  async logout(sessionToken: string): Promise<void> {
    await this.o.pool.query("DELETE FROM web_sessions WHERE token_hash = $1", [sha256(sessionToken)]);
  }

  /** Resolves a session cookie. For state-changing requests pass the CSRF header to check it. */
  async authenticateSession(sessionToken: string, csrf?: { required: boolean; header: string | null }): Promise<Principal & { csrfToken: string }> {
    const { rows } = await this.o.pool.query<{ user_id: string; team_id: string; csrf_token: string; email: string; role: Role }>(
      `SELECT s.user_id, s.team_id, s.csrf_token, u.email, m.role FROM web_sessions s
       JOIN users u ON u.id = s.user_id JOIN memberships m ON m.user_id = s.user_id AND m.team_id = s.team_id
       WHERE s.token_hash = $1 AND s.expires_at > now()`,
      [sha256(sessionToken)],
    );
    const s = rows[0];
    if (!s) throw new UnauthorizedError("your session has expired; log in again");
    if (csrf?.required && !safeEqual(csrf.header ?? "", s.csrf_token)) throw new KeelError("csrf_failed", 403, "missing or wrong X-CSRF-Token header");
    return { teamId: s.team_id, role: s.role, actor: `user:${s.email}`, userId: s.user_id, apiKeyId: null, csrfToken: s.csrf_token };
  }

  /** Creates an API key; the key itself is returned once and never again. */
  async createApiKey(p: Principal, input: { name: string; role: Role }): Promise<{ id: string; key: string; prefix: string; role: Role }> {
    requireRole(p, "admin");
    if (!ROLES.includes(input.role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
    if (!input.name || input.name.length > 100) throw new ValidationError("name must be 1 to 100 characters");
    const key = token("kk_");
    const prefix = key.slice(0, 10);
    const { rows } = await this.o.pool.query<{ id: string }>(
      "INSERT INTO api_keys (team_id, name, prefix, hash, role) VALUES ($1, $2, $3, $4, $5) RETURNING id",
      [p.teamId, input.name, prefix, sha256(key), input.role],
    );
    return { id: rows[0]!.id, key, prefix, role: input.role };
  }

  async listApiKeys(p: Principal): Promise<{ id: string; name: string; prefix: string; role: string; createdAt: Date; lastUsedAt: Date | null; revokedAt: Date | null }[]> {
    requireRole(p, "admin");
    const { rows } = await this.o.pool.query(
      `SELECT id, name, prefix, role, created_at AS "createdAt", last_used_at AS "lastUsedAt", revoked_at AS "revokedAt"
       FROM api_keys WHERE team_id = $1 ORDER BY created_at DESC`,
      [p.teamId],
    );
    return rows;
  }

  async revokeApiKey(p: Principal, id: string): Promise<void> {
    requireRole(p, "admin");
    if (!isUuid(id)) throw new NotFoundError("ApiKey", id);
    const res = await this.o.pool.query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL", [id, p.teamId]);
    if (res.rowCount !== 1) throw new NotFoundError("ApiKey", id);
  }

  async authenticateApiKey(key: string): Promise<Principal> {
    const { rows } = await this.o.pool.query<{ id: string; team_id: string; role: Role; prefix: string }>(
      "UPDATE api_keys SET last_used_at = now() WHERE hash = $1 AND revoked_at IS NULL RETURNING id, team_id, role, prefix",
      [sha256(key)],
    );
    const k = rows[0];
    if (!k) throw new UnauthorizedError("invalid or revoked API key");
    return { teamId: k.team_id, role: k.role, actor: `api_key:${k.prefix}`, userId: null, apiKeyId: k.id };
  }

  async listMembers(p: Principal): Promise<{ userId: string; email: string; role: string; createdAt: Date }[]> {
    const { rows } = await this.o.pool.query(
      `SELECT u.id AS "userId", u.email, m.role, m.created_at AS "createdAt" FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.team_id = $1 ORDER BY m.created_at`,
      [p.teamId],
    );
    return rows;
  }

  /** Adds a member with a first password (they change it later); admins only. */
  async addMember(p: Principal, input: { email: string; password: string; role: Role }): Promise<{ userId: string }> {
    requireRole(p, "admin");
    if (!ROLES.includes(input.role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
    validatePassword(input.password);
    const email = normalizeEmail(input.email);
    try {
      return await withTransaction(this.o.pool, async (c) => {
        const u = await c.query<{ id: string }>("INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id", [email, await hashPassword(input.password)]);
        await c.query("INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, $3)", [p.teamId, u.rows[0]!.id, input.role]);
        return { userId: u.rows[0]!.id };
      });
    } catch (err) {
      if (pgCode(err) === PgCode.uniqueViolation) throw new ConflictError("user_exists", "a user with this email exists", { email });
      throw err;
    }
  }

  /** Changes a member's role; admins only. A team never loses its last admin. */
  async setMemberRole(p: Principal, userId: string, role: Role): Promise<{ userId: string; role: Role }> {
    requireRole(p, "admin");
    if (!ROLES.includes(role)) throw new ValidationError(`role must be one of ${ROLES.join(", ")}`);
    return this.changeMember(p, userId, async (c, current) => {
      if (current === "admin" && role !== "admin") await this.keepAnAdmin(c, p.teamId, "demote");
      await c.query("UPDATE memberships SET role = $3 WHERE team_id = $1 AND user_id = $2", [p.teamId, userId, role]);
      return { userId, role };
    });
  }

  /**
   * Removes a member from the team; admins only. Their dashboard logins to this team end at once
   * (every request re-reads the membership; the sessions are deleted too). The user account stays
   * (it may belong to other teams). A team never loses its last admin.
   */
  async removeMember(p: Principal, userId: string): Promise<void> {
    requireRole(p, "admin");
    await this.changeMember(p, userId, async (c, current) => {
      if (current === "admin") await this.keepAnAdmin(c, p.teamId, "remove");
      await c.query("DELETE FROM memberships WHERE team_id = $1 AND user_id = $2", [p.teamId, userId]);
      await c.query("DELETE FROM web_sessions WHERE team_id = $1 AND user_id = $2", [p.teamId, userId]);
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

function normalizeEmail(e: string): string {
  const email = String(e ?? "").trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254) throw new ValidationError("email is not valid");
  return email;
}

function validatePassword(pw: string): void {
  if (typeof pw !== "string" || pw.length < 12 || pw.length > 1024) throw new ValidationError("password must be 12 to 1024 characters");
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
