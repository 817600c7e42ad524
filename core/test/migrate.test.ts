import path from "node:path";
import { createHash } from "node:crypto";
import { readFile, mkdtemp, mkdir, writeFile, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { migrate, MigrationError } from "../src/db/migrate.js";
import { adminUrl } from "@keel/test/db";

const migrationsDir = path.resolve(import.meta.dirname, "../../prisma/migrations");
const created: string[] = [];
const ALL = [
  "20261125160000_init",
  "20261125160100_engine",
  "20261125170000_agent_loop",
  "20261125180000_web",
  "20261125190000_sandboxes",
  "20261125200000_mcp_servers",
  "20261125210000_run_notify_when",
  "20261125220000_runs_team_index",
  "20261207040000_api_key_creator",
  "20261207040100_secret_allowed_hosts",
  "20261207070000_runs_status_check",
  "20261207120000_sandbox_requests",
  "20261208010000_platform_teams",
  "20261208010100_run_traceparent",
];

async function emptyDb(): Promise<string> {
  const name = `keel_t_mig_${Math.random().toString(36).slice(2, 10)}`;
  const a = new pg.Client({ connectionString: adminUrl() });
  await a.connect();
  await a.query(`CREATE DATABASE ${name}`);
  await a.end();
  created.push(name);
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

async function rows<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  const a = new pg.Client({ connectionString: adminUrl() });
  await a.connect();
  for (const n of created) await a.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
  await a.end();
});

test("applies every migration once, with Prisma's bookkeeping, and is idempotent", async () => {
  const url = await emptyDb();
  const first = await migrate({ connectionString: url, migrationsDir });
  expect(first.applied).toEqual(ALL);
  const second = await migrate({ connectionString: url, migrationsDir });
  expect(second).toEqual({ applied: [], alreadyApplied: first.applied, checksumMismatches: [] });
  const recorded = await rows<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
    url,
    `SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name`,
  );
  expect(recorded.map((r) => r.migration_name)).toEqual(first.applied);
  for (const r of recorded) {
    // prisma migrate deploy compares this checksum with sha256 of the file; a mismatch would make it complain.
    const sql = await readFile(path.join(migrationsDir, r.migration_name, "migration.sql"));
    expect(r.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
    expect(r.finished_at).toBeInstanceOf(Date);
    expect(r.applied_steps_count).toBe(1);
  }
});

test("replicas migrating at once apply each migration exactly once", async () => {
  const url = await emptyDb();
  const results = await Promise.all(Array.from({ length: 6 }, () => migrate({ connectionString: url, migrationsDir })));
  const appliedCounts = results.flatMap((r) => r.applied);
  expect(appliedCounts.sort()).toEqual(ALL);
  const recorded = await rows<{ n: string }>(url, `SELECT count(*)::text AS n FROM _prisma_migrations`);
  expect(recorded[0]!.n).toBe(String(ALL.length));
  const tables = await rows<{ t: string }>(url, `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
  expect(tables.map((t) => t.t)).toEqual(
    expect.arrayContaining(["teams", "api_keys", "agents", "agent_versions", "sessions", "session_events", "runs", "tool_calls", "workers"]),
  );
});

test("a failing migration rolls back, records nothing and says which one failed", async () => {
  const url = await emptyDb();
  const dir = await mkdtemp(path.join(tmpdir(), "keel-mig-"));
  await cp(migrationsDir, dir, { recursive: true });
  await mkdir(path.join(dir, "29990101000000_broken"));
  await writeFile(path.join(dir, "29990101000000_broken", "migration.sql"), `CREATE TABLE ok_part (id int);\nSELECT * FROM no_such_table;`);
  await expect(migrate({ connectionString: url, migrationsDir: dir })).rejects.toThrow(/29990101000000_broken failed and was rolled back: .*no_such_table/);
  const t = await rows<{ n: string }>(url, `SELECT count(*)::text AS n FROM pg_tables WHERE tablename = 'ok_part'`);
  expect(t[0]!.n).toBe("0");
  const rec = await rows<{ migration_name: string }>(url, `SELECT migration_name FROM _prisma_migrations ORDER BY 1`);
  expect(rec.map((r) => r.migration_name)).toEqual(ALL);
});

test("an unreachable database is a clear MigrationError", async () => {
  const err = await migrate({ connectionString: "postgresql://postgres@127.0.0.1:1/nope", migrationsDir }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationError);
  expect((err as Error).message).toMatch(/cannot connect to the database/);
});

test("a migration left unfinished by an earlier failure blocks further migration", async () => {
  const url = await emptyDb();
  await migrate({ connectionString: url, migrationsDir });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('x', 'y', '20990101000000_half')`);
  await c.end();
  await expect(migrate({ connectionString: url, migrationsDir })).rejects.toThrow(/20990101000000_half failed earlier.*prisma migrate resolve/);
});
