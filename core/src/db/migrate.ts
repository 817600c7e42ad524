// Applies prisma/migrations/<name>/migration.sql in name order, keeping the same bookkeeping
// table as `prisma migrate deploy` (`_prisma_migrations`, sha256 checksums of the file), so a
// database migrated by either tool is accepted by the other.
//
// Why not run Prisma's CLI: `migrate deploy` needs Prisma's native schema engine, a download that
// air-gapped machines (and these build machines) cannot make. The rules we follow are Prisma's:
// - the whole run holds pg_advisory_lock(72707369), Prisma's own migrate lock key, so replicas
//   starting at once (and a concurrent `prisma migrate deploy`) apply each migration exactly once;
// - a migration whose row exists unfinished is a failed migration: refuse to go on;
// - a finished migration whose file changed is reported, not re-run.
// Each migration runs in one transaction; a failure rolls it back entirely and nothing is recorded.
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";

const PRISMA_MIGRATE_LOCK_KEY = 72707369;

export type MigrationResult = { applied: string[]; alreadyApplied: string[]; checksumMismatches: string[] };

export class MigrationError extends Error {
  constructor(
    message: string,
    readonly migration?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MigrationError";
  }
}

export async function listMigrations(dir: string): Promise<{ name: string; sql: string; checksum: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
    throw new MigrationError(`cannot read migrations directory ${dir}`, undefined, { cause: err });
  });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

// A database that is not there *yet* (starting, DNS or Service not ready, a failover): worth
// waiting for. Wrong credentials, TLS or database names are not: they fail at once.
const TRANSIENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "57P03"]);
const transient = (err: unknown) => TRANSIENT.has((err as { code?: string }).code ?? "") || /timeout|terminated unexpectedly/i.test((err as Error).message);

async function connect(opts: { connectionString: string; connectRetryMs?: number; log: (msg: string, fields?: object) => void }): Promise<pg.Client> {
  const deadline = Date.now() + (opts.connectRetryMs ?? 0);
  for (let attempt = 1, delayMs = 500; ; attempt++, delayMs = Math.min(delayMs * 2, 5_000)) {
    const client = new pg.Client({ connectionString: opts.connectionString, connectionTimeoutMillis: 10_000, application_name: "keel-migrate" });
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => {});
      const message = (err as Error).message || String((err as { code?: string }).code);
      if (!transient(err) || Date.now() + delayMs > deadline) {
        throw new MigrationError(`cannot connect to the database: ${message}${attempt > 1 ? ` (gave up after ${attempt} attempts)` : ""}`, undefined, {
          cause: err,
        });
      }
      opts.log("database not reachable yet; retrying", { attempt, error: message, retryInMs: delayMs });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

export async function migrate(opts: {
  connectionString: string;
  migrationsDir: string;
  log?: (msg: string, fields?: object) => void;
  /** Keep retrying a database that is not reachable yet for this long (0: fail at once). */
  connectRetryMs?: number;
}): Promise<MigrationResult> {
  const log = opts.log ?? (() => {});
  const migrations = await listMigrations(opts.migrationsDir);
  const client = await connect({ connectionString: opts.connectionString, connectRetryMs: opts.connectRetryMs, log });
  client.on("error", () => {});
  const result: MigrationResult = { applied: [], alreadyApplied: [], checksumMismatches: [] };
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
    );
    const failed = rows.find((r) => r.finished_at === null);
    if (failed) {
      throw new MigrationError(
        `migration ${failed.migration_name} failed earlier and is recorded unfinished; fix the database, then mark it with \`prisma migrate resolve\` before migrating again`,
        failed.migration_name,
      );
    }
    const done = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    for (const m of migrations) {
      const checksum = done.get(m.name);
      if (checksum !== undefined) {
        result.alreadyApplied.push(m.name);
        if (checksum !== m.checksum) {
          result.checksumMismatches.push(m.name);
          log("migration changed after it was applied", { migration: m.name });
        }
        continue;
      }
      try {
        await client.query("BEGIN");
        await client.query(m.sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), now(), 1)`,
          [randomUUID(), m.checksum, m.name],
        );
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw new MigrationError(`migration ${m.name} failed and was rolled back: ${(err as Error).message}`, m.name, { cause: err });
      }
      result.applied.push(m.name);
      log("migration applied", { migration: m.name });
    }
    return result;
  } finally {
    // Ending the connection releases the advisory lock even if the unlock below cannot run.
    await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_MIGRATE_LOCK_KEY]).catch(() => {});
    await client.end().catch(() => {});
  }
}
