import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const MigrateEnvSchema = z.object({
  DATABASE_URL: z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, e.g. postgresql://keel:secret@localhost:5432/keel" }),
  /** Where the Prisma-format migrations live (the Docker image sets it). */
  KEEL_MIGRATIONS_DIR: z.string().default(path.join(repoRoot, "prisma/migrations")),
  /** How long `keel migrate` waits for a database that is not reachable yet (retries with backoff, each logged); 0: fail at once. */
  KEEL_MIGRATE_WAIT_MS: z.coerce.number().int().min(0).max(3_600_000).default(0),
});

export const WebCliEnvSchema = z.object({
  DATABASE_URL: z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, e.g. postgresql://keel:secret@localhost:5432/keel" }),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  /** All interfaces by default: `keel web` is what runs in a container. */
  KEEL_HOST: z.string().default("0.0.0.0"),
  KEEL_MIGRATIONS_DIR: z.string().default(path.join(repoRoot, "prisma/migrations")),
  /** On SIGTERM: how long /readyz answers 503 while requests are still served, before the listener closes. */
  KEEL_SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  /** Then: how long requests in flight may finish before their connections are cut (streams end at once). */
  KEEL_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  /** The session view's local sandboxes: the worker's dir and runtime (same defaults as `keel worker`). */
  KEEL_SANDBOX_DIR: z.string().default(path.join(repoRoot, ".keel", "sandboxes")),
  KEEL_SANDBOX_RUNTIME: z.string().default(path.join(repoRoot, "sandbox", "dist", "runtime.mjs")),
});

export const UpEnvSchema = z.object({
  /** An existing Postgres to use instead of the embedded one. */
  DATABASE_URL: z.preprocess((v) => (v === "" ? undefined : v), z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, or unset for the embedded Postgres" }).optional()),
  /** Where `keel up` keeps the embedded Postgres data (survives restarts). */
  KEEL_DATA_DIR: z.string().default(path.join(repoRoot, ".keel")),
  /** Port of the embedded Postgres (loopback only). */
  KEEL_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  KEEL_MIGRATIONS_DIR: z.string().default(path.join(repoRoot, "prisma/migrations")),
  /** Dashboard and API port. */
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  /** Address the dashboard listens on; loopback by default on one machine. */
  KEEL_HOST: z.string().default("127.0.0.1"),
});
