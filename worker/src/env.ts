// The worker's environment, parsed once at start-up. Shared variables (database, model and
// outbound, secrets, sandbox, logging) are declared once in core/src/config; the rest are the
// worker's alone. Every variable is listed in README.md "Configuration".
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  checkEnv,
  databaseEnv,
  int,
  loggingEnv,
  modelEnv,
  optional,
  sandboxEnv,
  sandboxEnvRules,
  sandboxWorkerRules,
  secretsEnv,
  telemetryEnv,
  type Env,
} from "@keel/core/config";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const workerEnv = {
  ...databaseEnv,
  ...modelEnv,
  ...secretsEnv,
  ...sandboxEnv({ repoRoot }),
  ...loggingEnv,
  // KEEL_METRICS_TOKEN (also guards this port) and OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_SERVICE_NAME (default keel-worker).
  ...telemetryEnv,
  /**
   * Port of the worker's own Prometheus /metrics (the engine's figures: dispatch, runs, takeovers,
   * model and tool calls, sandbox acquires, events, queue depth). Unset: not served, so several
   * workers can share a host; k8s/base sets 9464. 0 picks a free port (logged as "metrics listening").
   */
  KEEL_WORKER_METRICS_PORT: optional(z.coerce.number().int().min(0).max(65535)),
  /** Address the metrics port binds to. */
  KEEL_WORKER_METRICS_HOST: z.string().min(1).default("0.0.0.0"),
  /** Runs one worker process drives at once. */
  KEEL_WORKER_CONCURRENCY: int(4),
  /** Claim lease; a worker that stops heartbeating loses its runs after this. */
  KEEL_LEASE_MS: int(30_000, 100),
  /** On SIGTERM, how long the current step may run before it is aborted and handed back. */
  KEEL_DRAIN_MS: int(10_000, 0),
  /** Fallback poll interval when no NOTIFY arrives. */
  KEEL_POLL_MS: int(2_000, 10),
  /** How often each worker looks for runs of dead workers. */
  KEEL_SWEEP_MS: int(250, 10),
  /** A run whose workers die this many times fails. */
  KEEL_MAX_TAKEOVERS: int(10),
  /** Model calls one run may make before it fails (ends endless tool loops). */
  KEEL_MAX_MODEL_CALLS: int(25),
  /** Tool output larger than this is cut, with a note to the model. */
  KEEL_MAX_TOOL_OUTPUT_BYTES: int(65_536, 1024),
  /** How often the worker suspends idle sandboxes and removes expired and orphaned ones. */
  KEEL_SANDBOX_REAP_MS: int(30_000, 1_000),
};

export const WorkerEnvSchema = z.object(workerEnv).superRefine((env, ctx) => {
  sandboxEnvRules(env, ctx);
  sandboxWorkerRules(env, ctx);
});
export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;

/** Parses the environment or exits 2 with a message saying which variables to fix and how. */
export function parseEnv<T>(schema: z.ZodType<T>, env: Env, processName: string): T {
  const r = checkEnv(schema, env, processName);
  if (r.ok) return r.env;
  process.stderr.write(r.message + "\n");
  process.exit(2);
}
