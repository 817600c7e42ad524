// The environments of the CLI's commands, parsed once when the command starts. `keel web` and
// `keel up` parse the web process's whole environment here (server/src/env.ts) before Next
// starts, and hand the result to it: a bad value exits 2 before anything listens.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { databaseEnv, loggingEnv, optionalDatabaseEnv, port, sandboxEnvRules } from "@keel/core/config";
import { workerEnv } from "@keel/worker";
import { webEnvRules, webEnvShape } from "@keel/server/env";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Where the Prisma-format migrations live (the Docker image sets it). */
const migrationsDir = { KEEL_MIGRATIONS_DIR: z.string().default(path.join(repoRoot, "prisma", "migrations")) };

export const MigrateEnvSchema = z.object({
  ...databaseEnv,
  ...loggingEnv,
  ...migrationsDir,
  /** How long `keel migrate` waits for a database that is not reachable yet (retries with backoff, each logged); 0: fail at once. */
  KEEL_MIGRATE_WAIT_MS: z.coerce.number().int().min(0).max(3_600_000).default(0),
});

/** `keel web` alone: the web environment plus how the CLI serves it. */
const webServing = {
  /** On SIGTERM: how long /readyz answers 503 while requests are still served, before the listener closes. */
  KEEL_SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  /** Then: how long requests in flight may finish before their connections are cut (streams end at once). */
  KEEL_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
};

export const WebCliEnvSchema = z
  .object({
    ...webEnvShape({ repoRoot }),
    ...webServing,
    /** Address the web process listens on: all interfaces for `keel web` (what runs in a container), loopback for `keel up`. */
    KEEL_HOST: z.string().default("0.0.0.0"),
  })
  .superRefine(webEnvRules);

/**
 * `keel up` runs a worker and the web process in this one process: everything they read is parsed
 * here, at start, before the embedded Postgres starts. The admin pair is not checked as a pair:
 * `keel up` generates what is missing.
 */
export const UpEnvSchema = z
  .object({
    ...workerEnv,
    ...webEnvShape({ repoRoot }),
    ...optionalDatabaseEnv,
    /** Where `keel up` keeps the embedded Postgres data, the generated admin password and secrets key (survives restarts). */
    KEEL_DATA_DIR: z.string().default(path.join(repoRoot, ".keel")),
    /** Port of the embedded Postgres (loopback only). */
    KEEL_PG_PORT: port(54329),
    KEEL_HOST: z.string().default("127.0.0.1"),
  })
  .superRefine(sandboxEnvRules);
export type UpEnv = z.infer<typeof UpEnvSchema>;

/**
 * `keel teams` and `keel platform-admins`: against the API with a platform key, or against the
 * database directly (break-glass). The API wins when both are set.
 */
export const TeamsEnvSchema = z.object({
  ...optionalDatabaseEnv,
  /** The dashboard's URL, e.g. http://localhost:3000 (with KEEL_API_KEY). */
  KEEL_API_URL: z.string().url().optional(),
  /** A platform key: created by a platform admin with `platform: true` (POST /api/v1/api-keys). */
  KEEL_API_KEY: z.string().min(1).optional(),
});
export type TeamsEnv = z.infer<typeof TeamsEnvSchema>;
