// One set of core objects per web process, created on first use. Web replicas hold no session
// state: everything here is a connection or a cache of nothing.
import {
  Accounts,
  AgentChat,
  moveMcpHeadersToSecrets,
  createLogger,
  createPool,
  createSandboxDriver,
  DeltaFeed,
  EngineClient,
  EventFeed,
  RunOutcomes,
  SandboxRelayClient,
  SandboxStore,
  Secrets,
  sessionPolicyResolver,
  SessionSandboxes,
  SandboxUnavailableError,
  Tenancy,
  Platform,
  type Logger,
  type Pool,
  type SandboxDriver,
} from "@keel/core";
import type { Telemetry } from "@keel/core/telemetry";
import { sandboxDriverConfig } from "@keel/core/config";
import { webEnv, type WebEnv } from "./env";
import { webTelemetry } from "./metrics";

export type Context = {
  env: WebEnv;
  logger: Logger;
  pool: Pool;
  tenancy: Tenancy;
  engine: EngineClient;
  accounts: Accounts;
  /** Teams and platform admins (platform routes). */
  platform: Platform;
  secrets: Secrets;
  feed: EventFeed;
  /** Live token deltas of a session (ephemeral: NOTIFY on keel_stream): `deltas.subscribe(sessionId, fn)` returns unsubscribe. */
  deltas: DeltaFeed;
  /** Waits for a run to settle and sums up its answer (the OpenAI-compatible endpoint). */
  runs: RunOutcomes;
  /** Posts to an agent addressed by name (the OpenAI-compatible endpoint). */
  chat: AgentChat;
  /** Sessions' sandboxes (state, policy, files) through the configured driver. */
  sandboxes: SessionSandboxes;
  /** Request spans (continuing a caller's traceparent) and the engine figures on /metrics. */
  telemetry: Telemetry;
  migrationsDir: string;
};

// Kept on globalThis: Next may load this module in more than one bundle chunk.
const g = globalThis as unknown as { __keelContext?: Promise<Context> };

export function getContext(): Promise<Context> {
  g.__keelContext ??= create().catch((err: unknown) => {
    g.__keelContext = undefined; // a failed start (database down) is retried by the next request
    throw err;
  });
  return g.__keelContext;
}

async function create(): Promise<Context> {
  const env = webEnv();
  const logger = createLogger({ level: env.KEEL_LOG_LEVEL, name: "web" });
  const pool = createPool(env.DATABASE_URL, { max: 10, applicationName: "keel-web" });
  const accounts = new Accounts({ pool, invitationTtlMs: env.KEEL_INVITATION_TTL_MS });
  if (env.KEEL_ADMIN_EMAIL && env.KEEL_ADMIN_PASSWORD) {
    const r = await accounts.bootstrapAdmin({
      email: env.KEEL_ADMIN_EMAIL,
      password: env.KEEL_ADMIN_PASSWORD,
      teamSlug: env.KEEL_ADMIN_TEAM,
      teamName: env.KEEL_ADMIN_TEAM,
    });
    if (r.created) logger.info({ teamId: r.teamId }, "first admin created");
  }
  const feed = new EventFeed({ pool, connectionString: env.DATABASE_URL, logger });
  await feed.start();

  const deltas = new DeltaFeed({ connectionString: env.DATABASE_URL, logger, applicationName: "keel-web-stream" });
  await deltas.start();

  // Failed logins older than the limits' window count for nothing; drop them every 5 minutes.
  setInterval(() => void accounts.pruneLoginAttempts().catch((err: unknown) => logger.warn({ err }, "login attempts prune failed")), 5 * 60_000).unref();

  const secrets = new Secrets({ pool, keyBase64: env.KEEL_SECRETS_KEY });
  // Plain MCP header values of older agent configs move into team secrets (this process has the key).
  if (env.KEEL_SECRETS_KEY)
    await moveMcpHeadersToSecrets({ pool, secrets, logger }).catch((err: unknown) => logger.error({ err }, "moving plain MCP headers into secrets failed"));
  // On Kubernetes the workers run the session view's file reads and starts (core/src/sandbox/relay.ts):
  // the web gets no ServiceAccount token, no RBAC and no network path to sandbox pods.
  const where =
    env.KEEL_SANDBOX_DRIVER === "kubernetes"
      ? {
          remote: new SandboxRelayClient({
            pool,
            connectionString: env.DATABASE_URL,
            driverName: "kubernetes",
            logger: logger.child({ component: "sandbox-relay" }),
          }),
        }
      : { driver: sandboxDriver(env, pool, logger) };
  const sandboxes = new SessionSandboxes({ db: pool, store: new SandboxStore(pool), ...where, resolvePolicy: sessionPolicyResolver(pool, secrets) });

  const tenancy = new Tenancy({ pool });
  const engine = new EngineClient({ pool });
  return {
    env,
    logger,
    pool,
    accounts,
    platform: new Platform({ pool }),
    feed,
    deltas,
    secrets,
    sandboxes,
    tenancy,
    engine,
    runs: new RunOutcomes({ engine, feed, timeoutMs: env.KEEL_COMPLETION_TIMEOUT_MS }),
    chat: new AgentChat({ pool, tenancy, engine }),
    telemetry: webTelemetry(env, pool),
    migrationsDir: env.KEEL_MIGRATIONS_DIR,
  };
}

/** The local sandbox driver, made on first use: a misconfigured one fails the sandbox calls (503), not the process. */
function sandboxDriver(env: WebEnv, pool: Pool, logger: Logger): () => SandboxDriver {
  let driver: SandboxDriver | undefined;
  return () => {
    if (driver) return driver;
    try {
      // The worker's config from the same variables (core/src/config/sandbox.ts).
      driver = createSandboxDriver(sandboxDriverConfig(env), { store: new SandboxStore(pool), logger });
    } catch (err) {
      throw new SandboxUnavailableError(
        `the ${env.KEEL_SANDBOX_DRIVER} sandbox driver is not usable in the web process: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    return driver;
  };
}
