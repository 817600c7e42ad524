// Ready = the database answers and every migration in the migrations directory is applied
// (finished, not rolled back) in `_prisma_migrations`, the table `prisma migrate deploy` keeps.
import { readdir } from "node:fs/promises";
import type { Context } from "./context";

export async function readiness(ctx: Context): Promise<{ ok: boolean; database: boolean; pendingMigrations: string[]; error?: string }> {
  let applied: Set<string>;
  try {
    const { rows } = await ctx.pool.query<{ migration_name: string }>(
      `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    applied = new Set(rows.map((r) => r.migration_name));
  } catch (err) {
    return {
      ok: false,
      database: false,
      pendingMigrations: [],
      error: (err as { code?: string }).code === "42P01" ? "no migrations applied" : "database unreachable",
    };
  }
  const expected = (await readdir(ctx.migrationsDir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const pendingMigrations = expected.filter((m) => !applied.has(m));
  return { ok: pendingMigrations.length === 0, database: true, pendingMigrations };
}
