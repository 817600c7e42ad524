// The web process's environment, parsed once (on first use) with zod. A wrong value stops the
// process with a message naming the variable; see README.md for the table.
import { z } from "zod";
import { parseTrustedProxies } from "@keel/core/access/client-address";

const optional = <T extends z.ZodType>(t: T) => z.preprocess((v) => (v === "" ? undefined : v), t.optional());
const bool = (def: boolean) => z.preprocess((v) => (v === undefined || v === "" ? def : v === "1" || v === "true"), z.boolean());

export const WebEnvSchema = z.object({
  /** Postgres connection string (required; `keel up` sets it for its embedded server). */
  DATABASE_URL: z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, e.g. postgresql://keel:secret@localhost:5432/keel" }),
  /** Port `next start` listens on (read by the CLI that starts it; recorded here for one list). */
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  /** 32 random bytes, base64 (`openssl rand -base64 32`). Unset: the secrets API answers 503. */
  KEEL_SECRETS_KEY: optional(z.string().refine((s) => Buffer.from(s, "base64").length === 32, "KEEL_SECRETS_KEY must be 32 bytes, base64 (openssl rand -base64 32)")),
  /** First start: this admin (and team) is created when no user has this email yet. */
  KEEL_ADMIN_EMAIL: optional(z.string().email()),
  /** At least 12 characters. Only used to create the admin; changing it later changes nothing. */
  KEEL_ADMIN_PASSWORD: optional(z.string().min(12, "KEEL_ADMIN_PASSWORD must be at least 12 characters")),
  /** Slug of the first team (lowercase letters, digits, -). */
  KEEL_ADMIN_TEAM: z.string().regex(/^[a-z0-9][a-z0-9-]*$/).default("default"),
  /** Mark the session cookie Secure (set to true behind HTTPS). */
  KEEL_COOKIE_SECURE: bool(false),
  /** Seconds between SSE heartbeat comments. */
  KEEL_SSE_HEARTBEAT_MS: z.coerce.number().int().min(100).default(15_000),
  /** Longest an SSE stream stays open (default 1 h); it then ends with `event: reconnect` and the client reconnects, authenticated again. */
  KEEL_SSE_MAX_AGE_MS: z.coerce.number().int().min(1000).default(3_600_000),
  /** Reverse proxies whose X-Forwarded-For is believed, for login limits: comma-separated IPs or CIDRs (e.g. 10.0.0.0/8). Unset: none. */
  KEEL_TRUSTED_PROXIES: optional(z.string().refine((s) => {
    try {
      parseTrustedProxies(s);
      return true;
    } catch {
      return false;
    }
  }, "KEEL_TRUSTED_PROXIES must be comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,192.168.1.7")),
  /** When set, /metrics answers only `Authorization: Bearer <this token>` (16+ characters). Unset: /metrics is open; block it at the ingress. */
  KEEL_METRICS_TOKEN: optional(z.string().min(16, "KEEL_METRICS_TOKEN must be at least 16 characters")),
  /** Longest a non-streamed /v1/chat/completions call waits for its run. */
  KEEL_COMPLETION_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
  /** Where the Prisma-format migrations live (for /readyz). */
  KEEL_MIGRATIONS_DIR: optional(z.string()),
  KEEL_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // The session view shows sandboxes through the same driver the worker uses (same meaning as
  // the worker's variables; see README.md). Local: the worker's sandbox dir on this machine.
  // Kubernetes: the workers read files and start sandboxes for the web (core/src/sandbox/relay.ts),
  // so the web needs none of the worker's kubernetes settings.
  KEEL_SANDBOX_DRIVER: z.enum(["local", "kubernetes"]).default("local"),
  /** local: where the worker keeps sandboxes (default ../.keel/sandboxes from server/, as the worker's). */
  KEEL_SANDBOX_DIR: optional(z.string()),
  /** local: the bundled runtime, for "start sandbox" (default ../sandbox/dist/runtime.mjs). */
  KEEL_SANDBOX_RUNTIME: optional(z.string()),
  KEEL_ALLOW_UNSANDBOXED: bool(false),
  /** local: as the worker's (README.md); a sandbox started here must match the worker's config. */
  KEEL_SANDBOX_EGRESS_INTERNAL: z.preprocess((v) => (typeof v === "string" && v.trim() !== "" ? v.split(",").map((e) => e.trim()).filter(Boolean) : undefined), z.array(z.string()).optional()),
  /** local: as the worker's: no new sandbox below this much free disk, MB. */
  KEEL_SANDBOX_MIN_FREE_MB: z.coerce.number().int().min(0).default(1024),
});
export type WebEnv = z.infer<typeof WebEnvSchema>;

let parsed: WebEnv | null = null;

/** Parses process.env once; throws an Error whose message lists every variable to fix. */
export function webEnv(): WebEnv {
  if (parsed) return parsed;
  const r = WebEnvSchema.safeParse(process.env);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    const msg = `keel web: invalid environment\n${lines.join("\n")}\nSee server/README.md.`;
    process.stderr.write(msg + "\n");
    throw new Error(msg);
  }
  if (Boolean(r.data.KEEL_ADMIN_EMAIL) !== Boolean(r.data.KEEL_ADMIN_PASSWORD)) {
    throw new Error("keel web: set both KEEL_ADMIN_EMAIL and KEEL_ADMIN_PASSWORD, or neither");
  }
  return (parsed = r.data);
}
