// One PostgreSQL server per test run; migrations applied once to a template database; each test
// file gets its own database copied from the template (CREATE DATABASE … TEMPLATE: fast, isolated).
// TEST_DATABASE_URL points at an existing server (CI uses Debian's PostgreSQL 15); without it, a
// private embedded PostgreSQL 18 is started under .tmp/.
import path from "node:path";
import { rm } from "node:fs/promises";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { migrate } from "@keel/core";
import { startEmbeddedPostgres } from "@keel/cli/embedded-postgres";
// @ts-expect-error plain JS module shared with npm start and the server tests
import { ensureWebBuild } from "@keel/server/build";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

const root = path.resolve(import.meta.dirname, "..");

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Once per run, before any file starts: several test files start the built dashboard.
  const web = ensureWebBuild();
  if (web.rebuilt) process.stdout.write(`dashboard built in ${Math.round(web.ms / 1000)} s\n`);
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stop = async () => {};
  if (!adminUrl) {
    const dir = path.join(root, ".tmp", `test-pg-${process.pid}`);
    const server = await startEmbeddedPostgres({ dir, persistent: false });
    adminUrl = server.url("postgres");
    stop = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const template = `keel_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${template}`;
  await migrate({ connectionString: u.toString(), migrationsDir: path.join(root, "prisma/migrations") });
  project.provide("pgAdminUrl", adminUrl);
  project.provide("pgTemplate", template);
  return async () => {
    const a = new pg.Client({ connectionString: adminUrl });
    await a.connect();
    const { rows } = await a.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'keel_t%'`);
    for (const r of rows) await a.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`).catch(() => {});
    await a.end();
    await stop();
  };
}
