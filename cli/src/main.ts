// `keel <command>`: thin dispatch; each command parses its own environment and calls core.
import { createLogger, migrate, MigrationError } from "@keel/core";
import { main as workerMain, parseEnv, startWorker, WorkerEnvSchema } from "@keel/worker";
import { MigrateEnvSchema, UpEnvSchema } from "./env.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";

const USAGE = `usage: keel <command>

  up        start everything on one machine: embedded Postgres (unless DATABASE_URL is set),
            migrations, a worker. Data is kept in KEEL_DATA_DIR (default ./.keel).
  migrate   apply database migrations and exit (the Kubernetes init container)
  worker    run a worker: claims runs and drives them until SIGTERM
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
  const logger = createLogger({ name: "migrate" });
  try {
    const r = await migrate({ connectionString: env.DATABASE_URL, migrationsDir: env.KEEL_MIGRATIONS_DIR, log: (msg, fields) => logger.info(fields ?? {}, msg) });
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
  const env = parseEnv(UpEnvSchema, process.env, "up");
  const logger = createLogger({ name: "up" });
  let databaseUrl = env.DATABASE_URL;
  let stopPg = async () => {};
  if (!databaseUrl) {
    logger.info({ dataDir: env.KEEL_DATA_DIR, port: env.KEEL_PG_PORT }, "starting embedded postgres");
    const pg = await startEmbeddedPostgres({ dir: env.KEEL_DATA_DIR, port: env.KEEL_PG_PORT, persistent: true }).catch((err: unknown) => {
      process.stderr.write(`keel up: could not start the embedded Postgres in ${env.KEEL_DATA_DIR} on port ${env.KEEL_PG_PORT}: ${(err as Error).message}\n` +
        `Is another Keel already running? Set KEEL_PG_PORT to a free port, or DATABASE_URL to use your own Postgres.\n`);
      process.exit(1);
    });
    databaseUrl = pg.url("postgres");
    stopPg = pg.stop;
  }
  const r = await migrate({ connectionString: databaseUrl, migrationsDir: env.KEEL_MIGRATIONS_DIR });
  logger.info({ applied: r.applied.length }, "database ready");
  const workerEnv = parseEnv(WorkerEnvSchema, { ...process.env, DATABASE_URL: databaseUrl }, "up");
  const worker = await startWorker(workerEnv, { logger: createLogger({ level: workerEnv.KEEL_LOG_LEVEL, name: "worker" }) });
  logger.info({ database: env.DATABASE_URL ? "external" : "embedded" }, "keel is up");
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    void (async () => {
      await worker.stop().catch(() => {});
      await stopPg().catch(() => {});
      process.exit(0);
    })();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
