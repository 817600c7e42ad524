// Team secrets: write-only through the API, encrypted at rest with AES-256-GCM under a 32-byte
// key from the environment (KEEL_SECRETS_KEY). Values leave the server only through `resolve`, by
// the worker, for the team that owns them: into that team's sandboxes (the names a sandbox policy
// exposes), as the API key to the model provider its agent names (provider.apiKeySecret), and as
// header values to its agent's MCP servers (headerSecrets). Which agent fields may name a secret
// is admin-only (agent/agent-guard.ts), so a member cannot send one somewhere new.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { ForbiddenError, NotFoundError, UnavailableError, ValidationError } from "./errors.js";
import { EgressMatcher, normalizeHost } from "@keel/sandbox/egress-rules";
import { parseEgressAllowList, parseEgressEntry } from "./sandbox/egress.js";
import type { Pool, Queryable } from "./db/pool.js";
import { audited } from "./audit.js";
import { requireRole, type Principal } from "./access/principal.js";
import { SECRET_NAME } from "./contract/api-schemas.js";

/** UPPER_SNAKE_CASE, up to 128 characters (the API contract checks config fields with it too). */
export { SECRET_NAME } from "./contract/api-schemas.js";

export class Secrets {
  private readonly key: Buffer | null;
  constructor(private readonly o: { pool: Pool; keyBase64?: string }) {
    this.key = o.keyBase64 ? Buffer.from(o.keyBase64, "base64") : null;
    if (this.key && this.key.length !== 32) throw new Error("the secrets key must be 32 bytes, base64-encoded (openssl rand -base64 32)");
  }

  private requireKey(): Buffer {
    if (!this.key) throw new UnavailableError("secrets are disabled: set KEEL_SECRETS_KEY (openssl rand -base64 32)");
    return this.key;
  }

  /** `allowedHosts`: bind the secret to these hosts (see `resolve`); empty or left out = not bound. */
  async put(p: Principal, name: string, value: string, allowedHosts: readonly string[] = []): Promise<void> {
    requireRole(p, "admin");
    const write = this.encrypt(p.teamId, name, value, allowedHosts);
    // The value is never audited.
    await audited(
      this.o.pool,
      p,
      (c) => write(c),
      () => ({ action: "secret.put", target: name, details: { allowedHosts } }),
    );
  }

  /** Writes a secret for the operator's own code (moving plain MCP headers), not for API callers: not audited. */
  async putForTeam(teamId: string, name: string, value: string, allowedHosts: readonly string[] = []): Promise<void> {
    await this.encrypt(teamId, name, value, allowedHosts)(this.o.pool);
  }

  /** Checks and encrypts; the answer writes the row (upsert) on the connection it is given. */
  private encrypt(teamId: string, name: string, value: string, allowedHosts: readonly string[]): (db: Queryable) => Promise<void> {
    if (!SECRET_NAME.test(name)) throw new ValidationError("secret names are UPPER_SNAKE_CASE, up to 128 characters", { name });
    if (typeof value !== "string" || value.length === 0 || Buffer.byteLength(value) > 64 * 1024)
      throw new ValidationError("a secret value is 1 byte to 64 KiB");
    if (!Array.isArray(allowedHosts) || allowedHosts.length > 50) throw new ValidationError("allowedHosts is a list of up to 50 hosts");
    for (const h of allowedHosts) {
      const r = typeof h === "string" ? parseEgressEntry(h) : new Error("not a string");
      if (r instanceof Error) throw new ValidationError(`allowedHosts: ${r.message}`, { entry: h });
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.requireKey(), iv);
    // The team and name are authenticated data: a ciphertext copied to another row will not decrypt.
    cipher.setAAD(Buffer.from(`${teamId}/${name}`));
    const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
    const tag = cipher.getAuthTag();
    return async (db) => {
      await db.query(
        `INSERT INTO secrets (team_id, name, ciphertext, iv, tag, allowed_hosts) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (team_id, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, iv = EXCLUDED.iv, tag = EXCLUDED.tag, allowed_hosts = EXCLUDED.allowed_hosts, updated_at = now()`,
        [teamId, name, ciphertext, iv, tag, [...allowedHosts]],
      );
    };
  }

  /** Names, bound hosts and dates only: values are never returned. */
  async list(p: Principal): Promise<{ name: string; allowedHosts: string[]; updatedAt: Date }[]> {
    const { rows } = await this.o.pool.query(
      `SELECT name, COALESCE(allowed_hosts, '{}') AS "allowedHosts", updated_at AS "updatedAt" FROM secrets WHERE team_id = $1 ORDER BY name`,
      [p.teamId],
    );
    return rows;
  }

  async listNames(teamId: string): Promise<string[]> {
    const { rows } = await this.o.pool.query<{ name: string }>(`SELECT name FROM secrets WHERE team_id = $1`, [teamId]);
    return rows.map((r) => r.name);
  }

  async remove(p: Principal, name: string): Promise<void> {
    requireRole(p, "admin");
    await audited(
      this.o.pool,
      p,
      async (c) => {
        const res = await c.query("DELETE FROM secrets WHERE team_id = $1 AND name = $2", [p.teamId, name]);
        if (res.rowCount !== 1) throw new NotFoundError("Secret", name);
      },
      () => ({ action: "secret.delete", target: name }),
    );
  }

  /**
   * Decrypts the named secrets of one team. Missing names are skipped. `destination`: the URL the
   * worker will send them to (provider key, MCP header); a secret bound to hosts is refused
   * (Forbidden) for a URL whose host it does not list. Without a destination (a sandbox's env,
   * from where code may send it anywhere its egress allows), bound secrets are skipped.
   */
  async resolve(teamId: string, names: readonly string[], destination?: string): Promise<Record<string, string>> {
    if (names.length === 0) return {};
    const { rows } = await this.o.pool.query<{ name: string; ciphertext: Buffer; iv: Buffer; tag: Buffer; allowed_hosts: string[] | null }>(
      "SELECT name, ciphertext, iv, tag, allowed_hosts FROM secrets WHERE team_id = $1 AND name = ANY($2)",
      [teamId, names],
    );
    const out: Record<string, string> = {};
    for (const r of rows) {
      const hosts = r.allowed_hosts ?? [];
      if (hosts.length > 0) {
        if (destination === undefined) continue;
        if (!hostListed(hosts, destination))
          throw new ForbiddenError(`the secret ${r.name} may only be sent to ${hosts.join(", ")}, not to ${safeHost(destination)}`, { secret: r.name });
      }
      const d = createDecipheriv("aes-256-gcm", this.requireKey(), r.iv);
      d.setAAD(Buffer.from(`${teamId}/${r.name}`));
      d.setAuthTag(r.tag);
      try {
        out[r.name] = Buffer.concat([d.update(r.ciphertext), d.final()]).toString("utf8");
      } catch {
        throw new UnavailableError(`the secret ${r.name} cannot be decrypted with this KEEL_SECRETS_KEY (was the key changed?); write it again`);
      }
    }
    return out;
  }
}

/** The URL's host (and port) is one a bound secret lists (sandbox egress grammar, matched as written). */
function hostListed(hosts: readonly string[], url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const matcher = new EgressMatcher(parseEgressAllowList(hosts));
  const host = normalizeHost(u.hostname);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  return isIP(host) ? matcher.addressAllowed(host, port) : matcher.nameAllowed(host, port);
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(invalid url)";
  }
}
