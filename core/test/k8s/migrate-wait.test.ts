// The migrate init container (k8s/base: KEEL_MIGRATE_WAIT_MS) against a database that is not up
// yet: migrate() retries the connection, logging each attempt, and applies the migrations once a
// real PostgreSQL starts on that port; it gives up with the reason after its deadline, and fails
// at once on an error that waiting cannot fix (a wrong password).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, expect, test } from "vitest";
import { freePort, startEmbeddedPostgres, type EmbeddedPg } from "@keel/cli/embedded-postgres";
import { waitFor } from "@keel/controlplane/harness";
import { migrate } from "../../src/db/migrate.ts";
import { repoRoot } from "./helpers.ts";

const dir = path.join(repoRoot, ".tmp", `pg-wait-${process.pid}`);
const migrationsDir = path.join(repoRoot, "prisma/migrations");
let server: EmbeddedPg | undefined;
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

test("a database that comes up later: migrate retries (each attempt logged) and then applies the migrations", async () => {
  const port = await freePort();
  // startEmbeddedPostgres reuses a password file it finds, so the URL is known before the server runs.
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "password"), "wait-test-password\n", { mode: 0o600 });
  const url = `postgresql://postgres:wait-test-password@127.0.0.1:${port}/postgres`;
  const logs: { msg: string; fields?: any }[] = [];
  const migrating = migrate({ connectionString: url, migrationsDir, connectRetryMs: 120_000, log: (msg, fields) => logs.push({ msg, fields }) });
  await waitFor(() => logs.some((l) => l.msg === "database not reachable yet; retrying"), { timeoutMs: 30_000, what: "a logged retry" });
  expect(logs[0]!.fields).toMatchObject({ attempt: 1, error: expect.stringMatching(/ECONNREFUSED/) });
  server = await startEmbeddedPostgres({ dir, port, persistent: false });
  const r = await migrating;
  expect(r.applied.length).toBeGreaterThan(0);

  // Waiting cannot fix a wrong password: it fails on the first attempt, nothing retried.
  const wrong = `postgresql://postgres:not-the-password@127.0.0.1:${port}/postgres`;
  const before = logs.length;
  await expect(migrate({ connectionString: wrong, migrationsDir, connectRetryMs: 60_000, log: (msg, fields) => logs.push({ msg, fields }) })).rejects.toThrow(
    /^cannot connect to the database: password authentication failed for user "postgres"$/,
  );
  expect(logs.length).toBe(before);
}, 120_000);

test("a database that stays down: migrate gives up after its deadline with the reason and the attempts", async () => {
  const url = `postgresql://postgres:x@127.0.0.1:${await freePort()}/postgres`;
  await expect(migrate({ connectionString: url, migrationsDir, connectRetryMs: 2_000 })).rejects.toThrow(
    /^cannot connect to the database: .*ECONNREFUSED.* \(gave up after \d+ attempts\)$/,
  );
  // Without a wait (the CLI's default outside Kubernetes) the first failure is final.
  await expect(migrate({ connectionString: url, migrationsDir })).rejects.toThrow(/^cannot connect to the database: .*ECONNREFUSED[^(]*$/);
}, 60_000);
