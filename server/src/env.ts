// The web process's environment. Shared variables (database, secrets, sandbox, logging) are
// declared once in core/src/config; the rest are the web's alone. Parsed once, at start: `keel web`
// and `keel up` parse it before Next starts and hand the result over (provideWebEnv); plain
// `next start` parses process.env in instrumentation.ts. A bad value stops the process (exit 2)
// naming the variable, before any request. Every variable is in README.md "Configuration".
import path from "node:path";
import { z } from "zod";
import { parseTrustedProxies } from "@keel/core";
import {
  checkEnv,
  bool,
  databaseEnv,
  int,
  loggingEnv,
  optional,
  port,
  sandboxEnv,
  sandboxEnvRules,
  secretsEnv,
  telemetryEnv,
  type Env,
} from "@keel/core/config";

/** `repoRoot`: the defaults of the migrations and local sandbox paths live under it. */
export function webEnvShape(opts: { repoRoot: string }) {
  return {
    ...databaseEnv,
    ...secretsEnv,
    // The session view shows sandboxes through the same driver config the worker builds.
    ...sandboxEnv(opts),
    ...loggingEnv,
    // KEEL_METRICS_TOKEN and the OTEL_* variables: metrics and traces, as the worker's.
    ...telemetryEnv,
    /** Port the dashboard and API listen on. */
    PORT: port(3000),
    /** First start: this admin (and team) is created when no user has this email yet. */
    KEEL_ADMIN_EMAIL: optional(z.string().email()),
    /** At least 12 characters. Only used to create the admin; changing it later changes nothing. */
    KEEL_ADMIN_PASSWORD: optional(z.string().min(12, "KEEL_ADMIN_PASSWORD must be at least 12 characters")),
    /** Slug of the first team (lowercase letters, digits, -). */
    KEEL_ADMIN_TEAM: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/)
      .default("default"),
    /** How long an invitation link works (default 7 days). */
    KEEL_INVITATION_TTL_MS: int(7 * 24 * 3_600_000, 60_000),
    /** Mark the session cookie Secure (set to true behind HTTPS). */
    KEEL_COOKIE_SECURE: bool(false),
    /** Milliseconds between SSE heartbeat comments. */
    KEEL_SSE_HEARTBEAT_MS: int(15_000, 100),
    /** Longest an SSE stream stays open (default 1 h); it then ends with `event: reconnect` and the client reconnects, authenticated again. */
    KEEL_SSE_MAX_AGE_MS: int(3_600_000, 1000),
    /** Reverse proxies whose X-Forwarded-For is believed, for login limits: comma-separated IPs or CIDRs (e.g. 10.0.0.0/8). Unset: none. */
    KEEL_TRUSTED_PROXIES: optional(
      z.string().refine((s) => {
        try {
          parseTrustedProxies(s);
          return true;
        } catch {
          return false;
        }
      }, "KEEL_TRUSTED_PROXIES must be comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,192.168.1.7"),
    ),
    /** Longest a non-streamed /v1/chat/completions call waits for its run. */
    KEEL_COMPLETION_TIMEOUT_MS: int(300_000, 1000),
    /** Where the Prisma-format migrations live: /readyz is ready when all of them are applied. */
    KEEL_MIGRATIONS_DIR: optional(z.string()).transform((v) => v ?? path.join(opts.repoRoot, "prisma", "migrations")),
  };
}

type WebShape = ReturnType<typeof webEnvShape>;
export type WebEnv = z.output<z.ZodObject<WebShape>>;

/** Cross-field rules; `keel up` leaves out the admin pair (it generates what is missing). */
export function webEnvRules(env: WebEnv, ctx: z.RefinementCtx): void {
  sandboxEnvRules(env, ctx);
  if (Boolean(env.KEEL_ADMIN_EMAIL) !== Boolean(env.KEEL_ADMIN_PASSWORD)) {
    ctx.addIssue({
      code: "custom",
      path: [env.KEEL_ADMIN_EMAIL ? "KEEL_ADMIN_PASSWORD" : "KEEL_ADMIN_EMAIL"],
      message: "set both KEEL_ADMIN_EMAIL and KEEL_ADMIN_PASSWORD, or neither",
    });
  }
}

export const webEnvSchema = (opts: { repoRoot: string }) => z.object(webEnvShape(opts)).superRefine(webEnvRules);

// On globalThis: the CLI's copy of this module and the Next bundles' copies are different module
// instances in one process (as src/shutdown.ts's drain state).
const g = globalThis as unknown as { __keelWebEnv?: WebEnv };

/** `keel web` / `keel up`: the environment they parsed (and completed: database URL, admin, key) for this process's routes. */
export function provideWebEnv(env: WebEnv): void {
  g.__keelWebEnv = env;
}

/**
 * The parsed environment. Under plain `next start` (no CLI) process.env is parsed here once, with
 * defaults relative to server/'s parent; throws an Error naming every variable to fix.
 */
export function webEnv(env: Env = process.env): WebEnv {
  if (g.__keelWebEnv) return g.__keelWebEnv;
  const r = checkEnv(webEnvSchema({ repoRoot: path.resolve(process.cwd(), "..") }), env, "web");
  if (!r.ok) throw new Error(r.message);
  return (g.__keelWebEnv = r.env);
}

/** At start-up (instrumentation.ts): a bad environment stops the process with exit code 2. */
export function requireWebEnv(): WebEnv {
  try {
    return webEnv();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}
