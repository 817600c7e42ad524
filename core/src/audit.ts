// The audit log: who did what, when, per team. Append-only; read newest first with a cursor.
import { ValidationError } from "./errors.js";
import { withTransaction, type Pool, type PoolClient, type Queryable } from "./db/pool.js";
import { auditedBy, requireRole, type Acting, type Principal } from "./access/principal.js";

export type AuditEntry = { id: string; actor: string; action: string; target: string | null; details: unknown; createdAt: Date };

/**
 * One audit row. Services call it with the client of the transaction that makes the change
 * (or through `audited`), so the change and its record commit together or not at all: a row
 * written after the commit is lost when the process dies in between, and a failed audit insert
 * would leave an unrecorded change.
 */
export async function audit(db: Queryable, p: Principal, action: string, target: string | null, details: Record<string, unknown> = {}): Promise<void> {
  await db.query("INSERT INTO audit_log (team_id, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)", [
    p.teamId,
    p.actor,
    action,
    target,
    JSON.stringify(details),
  ]);
}

export type AuditRecord = { action: string; target: string | null; details?: Record<string, unknown> };

/**
 * Runs a write and its audit row in one transaction. `by` a bare team id (the operator's own
 * call, see `Acting`) writes no row. `entry` names the row from the write's result.
 */
export async function audited<T>(
  pool: Pool,
  by: Acting,
  fn: (c: PoolClient) => Promise<T>,
  entry: (out: T) => AuditRecord,
  opts: { retries?: number } = {},
): Promise<T> {
  const p = auditedBy(by);
  return withTransaction(
    pool,
    async (c) => {
      const out = await fn(c);
      if (p) {
        const e = entry(out);
        await audit(c, p, e.action, e.target, e.details ?? {});
      }
      return out;
    },
    opts,
  );
}

export async function listAudit(
  db: Queryable,
  p: Principal,
  opts: { before?: string; limit?: number } = {},
): Promise<{ entries: AuditEntry[]; nextCursor: string | null }> {
  requireRole(p, "admin");
  const limit = opts.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ValidationError("limit must be between 1 and 500");
  if (opts.before !== undefined && !/^\d{1,19}$/.test(opts.before)) throw new ValidationError("cursor is not valid");
  const { rows } = await db.query<{ id: bigint; actor: string; action: string; target: string | null; details: unknown; created_at: Date }>(
    `SELECT id, actor, action, target, details, created_at FROM audit_log
     WHERE team_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3`,
    [p.teamId, opts.before ?? null, limit + 1],
  );
  const page = rows.slice(0, limit);
  return {
    entries: page.map((r) => ({ id: r.id.toString(), actor: r.actor, action: r.action, target: r.target, details: r.details, createdAt: r.created_at })),
    nextCursor: rows.length > limit ? page.at(-1)!.id.toString() : null,
  };
}
