// The worker process: parse env, build the engine's Worker, drain on SIGTERM/SIGINT.
import {
  builtinTools,
  createAgentStep,
  createLogger,
  createModelResolver,
  createPool,
  createSandboxTools,
  liveSessionIds,
  liveTeamIds,
  createSandboxDriver,
  McpToolSource,
  notifyDeltas,
  outboundPolicy,
  reapSandboxes,
  SandboxRelayServer,
  SandboxStore,
  Secrets,
  SessionSandboxes,
  sessionPolicyResolver,
  ToolRegistry,
  Worker,
  type Logger,
  type Pool,
  type StepFn,
} from "@keel/core";
import { sandboxDriverConfig } from "@keel/core/config";
import { collectDefaultMetrics, MetricsServer, Registry, registerQueueMetrics, startTracing, Telemetry } from "@keel/core/telemetry";
import { parseEnv, workerEnv, WorkerEnvSchema, type WorkerEnv } from "./env.js";

export { parseEnv, workerEnv, WorkerEnvSchema, type WorkerEnv };

/** metricsPort: where /metrics listens (undefined when KEEL_WORKER_METRICS_PORT is unset). */
export type RunningWorker = { worker: Worker; metricsPort: number | undefined; stop: (opts?: { drainMs?: number }) => Promise<void> };

export async function startWorker(env: WorkerEnv, opts: { logger?: Logger; step?: StepFn; version?: string } = {}): Promise<RunningWorker> {
  const logger = opts.logger ?? createLogger({ level: env.KEEL_LOG_LEVEL, name: "worker" });
  const pool = createPool(env.DATABASE_URL, { max: env.KEEL_WORKER_CONCURRENCY + 3, applicationName: "keel-worker" });
  const secrets = new Secrets({ pool, keyBase64: env.KEEL_SECRETS_KEY });
  const outbound = outboundPolicy({ allow: env.KEEL_OUTBOUND_HOSTS, internal: env.KEEL_OUTBOUND_INTERNAL_HOSTS, trusted: [env.KEEL_OPENAI_BASE_URL] });
  const obs = observability(env, pool, opts.version);
  const { telemetry } = obs;
  const sandboxes = sandboxSetup(env, pool, logger, secrets, telemetry);
  const worker = new Worker({
    pool,
    connectionString: env.DATABASE_URL,
    step:
      opts.step ??
      createAgentStep({
        pool,
        logger,
        tools: new ToolRegistry([...builtinTools, ...sandboxes.tools]),
        models: createModelResolver({ openaiBaseUrl: env.KEEL_OPENAI_BASE_URL, openaiApiKey: env.KEEL_OPENAI_API_KEY, secrets, outbound }),
        maxModelCallsPerRun: env.KEEL_MAX_MODEL_CALLS,
        maxToolOutputBytes: env.KEEL_MAX_TOOL_OUTPUT_BYTES,
        onDelta: notifyDeltas(pool),
        mcp: new McpToolSource({ logger: logger.child({ component: "mcp" }), outbound, secrets }),
        telemetry,
      }),
    telemetry,
    logger,
    version: opts.version ?? "dev",
    concurrency: env.KEEL_WORKER_CONCURRENCY,
    leaseMs: env.KEEL_LEASE_MS,
    drainMs: env.KEEL_DRAIN_MS,
    pollMs: env.KEEL_POLL_MS,
    sweepMs: env.KEEL_SWEEP_MS,
    maxTakeovers: env.KEEL_MAX_TAKEOVERS,
  });
  await worker.start();
  const metricsPort = await obs.server?.start();
  if (metricsPort !== undefined) logger.info({ port: metricsPort }, "metrics listening");
  // On Kubernetes the web has no cluster access: workers answer the session view's file reads and
  // starts (core/src/sandbox/relay.ts).
  const relay =
    env.KEEL_SANDBOX_DRIVER === "kubernetes"
      ? new SandboxRelayServer({
          pool,
          connectionString: env.DATABASE_URL,
          view: sandboxes.view,
          driverName: "kubernetes",
          workerId: worker.id,
          logger: logger.child({ component: "sandbox-relay" }),
        })
      : undefined;
  await relay?.start();
  const reaper = setInterval(() => void sandboxes.reap(), env.KEEL_SANDBOX_REAP_MS);
  reaper.unref();
  return {
    worker,
    metricsPort,
    stop: async (o) => {
      clearInterval(reaper);
      await relay?.stop();
      await worker.stop(o);
      await obs.server?.stop();
      await obs.tracing.shutdown().catch((err: unknown) => logger.warn({ err: (err as Error).message }, "trace export failed"));
      await pool.end().catch(() => {});
    },
  };
}

/** `keel worker`: runs until SIGTERM/SIGINT, then drains and exits 0. */
export async function main(): Promise<void> {
  const env = parseEnv(WorkerEnvSchema, process.env, "worker");
  const logger = createLogger({ level: env.KEEL_LOG_LEVEL, name: "worker" });
  const running = await startWorker(env, { logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainMs: env.KEEL_DRAIN_MS }, "draining");
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "drain failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

/**
 * The session's sandbox (local bubblewrap or Kubernetes) for the sandbox tools: a session's policy comes from its agent's
 * pinned version, its secrets are the team's, decrypted only for the names the policy exposes.
 */
function sandboxSetup(env: WorkerEnv, pool: Pool, logger: Logger, secrets: Secrets, telemetry: Telemetry) {
  const store = new SandboxStore(pool);
  const log = logger.child({ component: "sandbox" });
  // The same driver config the web process builds from the same variables (core/src/config/sandbox.ts).
  const driver = createSandboxDriver(sandboxDriverConfig(env), { store, logger: log });
  const resolvePolicy = sessionPolicyResolver(pool, secrets);
  const tools = createSandboxTools(driver, resolvePolicy, undefined, telemetry);
  const view = new SessionSandboxes({ db: pool, store, driver: () => driver, resolvePolicy });
  const reap = () =>
    reapSandboxes({ driver, liveSessions: (ids) => liveSessionIds(pool, ids), liveTeams: (ids) => liveTeamIds(pool, ids), logger }).catch((err: unknown) =>
      logger.warn({ err: (err as Error).message }, "sandbox reaper failed"),
    );
  return { tools, reap, view };
}

/**
 * The worker's metrics (its own registry: process figures, the engine's, the queue's) on
 * KEEL_WORKER_METRICS_PORT when set, and its spans to OTEL_EXPORTER_OTLP_ENDPOINT when set.
 */
function observability(env: WorkerEnv, pool: Pool, version?: string) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "keel_worker_" });
  registerQueueMetrics(registry, pool);
  const tracing = startTracing({
    endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
    serviceName: env.OTEL_SERVICE_NAME ?? "keel-worker",
    serviceVersion: version,
    scheduledDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
  });
  const telemetry = new Telemetry({ registry, tracer: tracing.tracer });
  const server =
    env.KEEL_WORKER_METRICS_PORT === undefined
      ? undefined
      : new MetricsServer({ registry, port: env.KEEL_WORKER_METRICS_PORT, host: env.KEEL_WORKER_METRICS_HOST, token: env.KEEL_METRICS_TOKEN });
  return { telemetry, tracing, server };
}
