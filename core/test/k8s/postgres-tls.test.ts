// k8s/README.md's Postgres TLS instructions, against a real PostgreSQL serving TLS with a
// certificate from a private CA made here with openssl (what managed Postgres services do: a CA
// that Node does not ship). The DATABASE_URL forms the README gives are the ones tested:
// `sslmode=verify-full&sslrootcert=<CA file>` connects (migrations, the engine's pool) over TLS;
// `sslmode=require` alone fails, because node-postgres verifies the chain for `require` too.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startEmbeddedPostgres, type EmbeddedPg } from "@keel/cli/embedded-postgres";
import { migrate } from "../../src/db/migrate.ts";
import { createPool } from "../../src/db/pool.ts";
import { repoRoot } from "./helpers.ts";

const dir = path.join(repoRoot, ".tmp", `pg-tls-${process.pid}`);
const pki = path.join(dir, "pki");
let server: EmbeddedPg;

const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
function makeCa(name: string): void {
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${pki}/${name}.key`, "-out", `${pki}/${name}.crt`);
}

beforeAll(async () => {
  mkdirSync(pki, { recursive: true });
  makeCa("db-ca");
  makeCa("other-ca");
  writeFileSync(`${pki}/san.ext`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", `${pki}/server.key`, "-out", `${pki}/server.csr`);
  openssl(
    "x509",
    "-req",
    "-in",
    `${pki}/server.csr`,
    "-CA",
    `${pki}/db-ca.crt`,
    "-CAkey",
    `${pki}/db-ca.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${pki}/san.ext`,
    "-out",
    `${pki}/server.crt`,
  );
  server = await startEmbeddedPostgres({ dir: path.join(dir, "pg"), persistent: false });
  // TLS is switched on with a reload: the server (as root, a `postgres` system user created at
  // initdb) must own its key file, and that user exists only once the server is initialised.
  const admin = new pg.Client({ connectionString: server.url("postgres") });
  await admin.connect();
  const { rows } = await admin.query<{ datadir: string }>("SELECT current_setting('data_directory') AS datadir");
  const uid = Number(execFileSync("stat", ["-c", "%u", rows[0]!.datadir]).toString().trim());
  for (const f of ["server.key", "server.crt"]) {
    chownSync(`${pki}/${f}`, uid, uid);
    chmodSync(`${pki}/${f}`, 0o600);
  }
  chmodSync(dir, 0o755);
  chmodSync(pki, 0o755);
  await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${pki}/server.crt'`);
  await admin.query(`ALTER SYSTEM SET ssl_key_file = '${pki}/server.key'`);
  await admin.query("ALTER SYSTEM SET ssl = on");
  await admin.query("SELECT pg_reload_conf()");
  await admin.query("CREATE DATABASE keel_tls");
  await admin.end();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const url = (query: string) => `${server.url("keel_tls")}?${query}`;

async function sslInUse(connectionString: string): Promise<boolean> {
  const pool = createPool(connectionString, { max: 1 });
  try {
    return (await pool.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0]!.ssl;
  } finally {
    await pool.end();
  }
}

test("DATABASE_URL with sslmode=verify-full&sslrootcert=<CA>: migrations and the engine's pool connect over TLS", async () => {
  const good = url(`sslmode=verify-full&sslrootcert=${encodeURIComponent(`${pki}/db-ca.crt`)}`);
  const r = await migrate({ connectionString: good, migrationsDir: path.join(repoRoot, "prisma/migrations") });
  expect(r.applied.length).toBeGreaterThan(0);
  expect(await sslInUse(good)).toBe(true);
}, 60_000);

test("the wrong CA, or sslmode=require without the CA, is refused: the chain is verified", async () => {
  const wrongCa = url(`sslmode=verify-full&sslrootcert=${encodeURIComponent(`${pki}/other-ca.crt`)}`);
  await expect(sslInUse(wrongCa)).rejects.toThrow(/self[- ]signed certificate|unable to verify|certificate/i);
  await expect(sslInUse(url("sslmode=require"))).rejects.toThrow(/self[- ]signed certificate|unable to verify|certificate/i);
  await expect(migrate({ connectionString: url("sslmode=require"), migrationsDir: path.join(repoRoot, "prisma/migrations") })).rejects.toThrow(
    /cannot connect to the database: .*certificate/i,
  );
}, 60_000);
