// One set of core objects per web process, created on first use. Web replicas hold no session
// state: everything here is a connection or a cache of nothing.
import { Accounts, moveMcpHeadersToSecrets, createLogger, createPool, createSandboxDriver, EngineClient, EventFeed, SandboxRelayClient, SandboxStore, Secrets, sessionPolicyResolver, SessionSandboxes, SandboxUnavailableError, STREAM_CHANNEL, Tenancy, type Logger, type Pool, type SandboxDriver } from "@keel/core";
import { PgListener } from "@keel/core/db/listener";
import { deltaNotificationSchema, type DeltaNotification } from "@keel/core/contract/events";
import { sandboxDriverConfig } from "@keel/core/config/index";
import { webEnv, type WebEnv } from "./env";

/** A token delta as the worker notified it (the contract's shape). */
export type DeltaMessage = DeltaNotification;
type DeltaFn = (m: DeltaMessage) => void;

export type Context = {
  env: WebEnv;
  logger: Logger;
  pool: Pool;
  tenancy: Tenancy;
  engine: EngineClient;
  accounts: Accounts;
  secrets: Secrets;
  feed: EventFeed;
  /** Sessions' sandboxes (state, policy, files) through the configured driver. */
  sandboxes: SessionSandboxes;
  /** Live token deltas of one session (ephemeral: NOTIFY on keel_stream). Returns unsubscribe. */
  onDeltas: (sessionId: string, fn: DeltaFn) => () => void;
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
  const accounts = new Accounts({ pool });
  if (env.KEEL_ADMIN_EMAIL && env.KEEL_ADMIN_PASSWORD) {
    const r = await accounts.bootstrapAdmin({ email: env.KEEL_ADMIN_EMAIL, password: env.KEEL_ADMIN_PASSWORD, teamSlug: env.KEEL_ADMIN_TEAM, teamName: env.KEEL_ADMIN_TEAM });
    if (r.created) logger.info({ teamId: r.teamId }, "first admin created");
  }
  const feed = new EventFeed({ pool, connectionString: env.DATABASE_URL, logger });
  await feed.start();

  const deltaSubs = new Map<string, Set<DeltaFn>>();
  const deltas = new PgListener({
    connectionString: env.DATABASE_URL,
    channels: [STREAM_CHANNEL],
    applicationName: "keel-web-stream",
    logger,
    onNotification: (_ch, payload) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(payload);
      } catch {
        return;
      }
      // Ephemeral: a notification that is not a delta is dropped (the stored item follows anyway).
      const m = deltaNotificationSchema.safeParse(parsed);
      if (!m.success) return;
      for (const fn of deltaSubs.get(m.data.sessionId) ?? []) fn(m.data);
    },
  });
  await deltas.start();

  // Failed logins older than the limits' window count for nothing; drop them every 5 minutes.
  setInterval(() => void accounts.pruneLoginAttempts().catch((err: unknown) => logger.warn({ err }, "login attempts prune failed")), 5 * 60_000).unref();

  const secrets = new Secrets({ pool, keyBase64: env.KEEL_SECRETS_KEY });
  // Plain MCP header values of older agent configs move into team secrets (this process has the key).
  if (env.KEEL_SECRETS_KEY) await moveMcpHeadersToSecrets({ pool, secrets, logger }).catch((err: unknown) => logger.error({ err }, "moving plain MCP headers into secrets failed"));
  // On Kubernetes the workers run the session view's file reads and starts (core/src/sandbox/relay.ts):
  // the web gets no ServiceAccount token, no RBAC and no network path to sandbox pods.
  const where = env.KEEL_SANDBOX_DRIVER === "kubernetes"
    ? { remote: new SandboxRelayClient({ pool, connectionString: env.DATABASE_URL, driverName: "kubernetes", logger: logger.child({ component: "sandbox-relay" }) }) }
    : { driver: sandboxDriver(env, pool, logger) };
  const sandboxes = new SessionSandboxes({ db: pool, store: new SandboxStore(pool), ...where, resolvePolicy: sessionPolicyResolver(pool, secrets) });

  return {
    env, logger, pool, accounts, feed, secrets, sandboxes,
    tenancy: new Tenancy({ pool }),
    engine: new EngineClient({ pool }),
    migrationsDir: env.KEEL_MIGRATIONS_DIR,
    onDeltas: (sessionId, fn) => {
      let set = deltaSubs.get(sessionId);
      if (!set) deltaSubs.set(sessionId, (set = new Set()));
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size === 0) deltaSubs.delete(sessionId);
      };
    },
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
      throw new SandboxUnavailableError(`the ${env.KEEL_SANDBOX_DRIVER} sandbox driver is not usable in the web process: ${(err as Error).message}`, {}, { cause: err });
    }
    return driver;
  };
}
