// The worker's environment, parsed once at start-up. Every variable is listed in README.md.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { parseEgressEntry } from "@keel/core";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bool = z.preprocess((v) => v === "1" || v === "true", z.boolean());

const int = (def: number, min = 1) => z.coerce.number().int().min(min).default(def);

/** A comma-separated list in the sandbox egress grammar (core/src/sandbox/egress.ts); unset or empty: undefined. */
export const egressList = z.preprocess(
  (v) => (typeof v === "string" && v.trim() !== "" ? v.split(",").map((e) => e.trim()).filter(Boolean) : undefined),
  z.array(z.string()).superRefine((entries, ctx) => {
    for (const e of entries) {
      const r = parseEgressEntry(e);
      if (r instanceof Error) ctx.addIssue({ code: "custom", message: r.message.replace("egress allow-list entry", "entry") });
    }
  }).optional(),
);

export const WorkerEnvSchema = z.object({
  /** Postgres connection string (required; `keel up` sets it for its embedded server). */
  DATABASE_URL: z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, e.g. postgresql://keel:secret@localhost:5432/keel" }),
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
  /** Default base URL of an OpenAI-compatible provider for agents that do not set one (e.g. a LiteLLM proxy). */
  KEEL_OPENAI_BASE_URL: z.preprocess((v) => (v === "" ? undefined : v), z.string().url().optional()),
  /** API key sent to that provider. */
  KEEL_OPENAI_API_KEY: z.string().optional(),
  /** Model calls one run may make before it fails (ends endless tool loops). */
  KEEL_MAX_MODEL_CALLS: int(25),
  /** Tool output larger than this is cut, with a note to the model. */
  KEEL_MAX_TOOL_OUTPUT_BYTES: int(65_536, 1024),
  /** local: bubblewrap on this machine; kubernetes: agent-sandbox claims in the cluster the worker runs in (or the kubeconfig's). */
  KEEL_SANDBOX_DRIVER: z.enum(["local", "kubernetes"]).default("local"),
  /** kubernetes: the Keel image sandboxes run (it holds the sandbox runtime). */
  KEEL_SANDBOX_IMAGE: z.preprocess((v) => (v === "" ? undefined : v), z.string().optional()),
  /** kubernetes: each team's sandboxes live in namespace <prefix><teamId>. */
  KEEL_SANDBOX_NAMESPACE_PREFIX: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "must be 1-40 lowercase letters, digits or '-', starting with a letter or digit (it prefixes a namespace name)")
    .default("keel-team-"),
  /** kubernetes: sandboxes kept started per team (SandboxWarmPool replicas). */
  KEEL_SANDBOX_WARM_POOL: int(0, 0),
  /** kubernetes: StorageClass of each sandbox's workspace PVC (size from the team's policy); unset: the cluster default. */
  KEEL_SANDBOX_STORAGE_CLASS: z.preprocess((v) => (v === "" ? undefined : v), z.string().regex(/^[a-z0-9][a-z0-9.-]{0,252}$/, "must be a StorageClass name").optional()),
  /** kubernetes: image pull Secrets in the worker's namespace, comma-separated; copied into every team namespace for the sandbox image. */
  KEEL_SANDBOX_IMAGE_PULL_SECRETS: z.preprocess(
    (v) => (typeof v === "string" ? v.split(",").map((x) => x.trim()).filter(Boolean) : v),
    z.array(z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "each name must be a Secret name")).default([]),
  ),
  /** Where local sandboxes keep their workspaces (persist across worker restarts). */
  KEEL_SANDBOX_DIR: z.string().default(path.join(repoRoot, ".keel", "sandboxes")),
  /** The bundled sandbox runtime (`npm run setup` builds it). */
  KEEL_SANDBOX_RUNTIME: z.string().default(path.join(repoRoot, "sandbox", "dist", "runtime.mjs")),
  /** Run sandbox tools WITHOUT isolation when bubblewrap is missing. Never in production. */
  KEEL_ALLOW_UNSANDBOXED: bool.default(false),
  /** How often the worker suspends idle sandboxes and removes expired and orphaned ones. */
  KEEL_SANDBOX_REAP_MS: int(30_000, 1_000),
  /** 32 bytes base64: decrypts the team secrets a sandbox policy exposes (same key as the web process). */
  KEEL_SECRETS_KEY: z.preprocess((v) => (v === "" ? undefined : v), z.string().optional()),
  /**
   * Hosts the worker may call for an agent's own provider.baseUrl and MCP servers, comma-separated
   * in the sandbox egress grammar (api.openai.com, *.example.com, 10.0.0.0/8, host:443). Unset: any
   * public host (internal addresses need KEEL_OUTBOUND_INTERNAL_HOSTS or an IP/CIDR entry here).
   */
  KEEL_OUTBOUND_HOSTS: egressList,
  /**
   * local: internal ranges (loopback, private, CGNAT, ULA, metadata, this host's own addresses)
   * sandboxes' egress allow-lists may reach, comma-separated addresses/CIDRs with optional :port
   * (10.0.0.0/8, 192.168.1.5:5432). Unset: none; no team policy opens them by itself.
   */
  KEEL_SANDBOX_EGRESS_INTERNAL: egressList,
  /** local: no new sandbox when the disk under KEEL_SANDBOX_DIR has less free space than this, MB (0: no floor). */
  KEEL_SANDBOX_MIN_FREE_MB: int(1024, 0),
  /**
   * Internal hosts (loopback, private, link-local, CGNAT, ULA, NAT64, this host's own addresses)
   * the worker may call for an agent's provider.baseUrl and MCP servers: exact names or *.suffix
   * as written in the URL, or IP/CIDR of the address connected to. Unset: none (the workers' own
   * KEEL_OPENAI_BASE_URL is always allowed). E.g. 127.0.0.1 for a local model server.
   */
  KEEL_OUTBOUND_INTERNAL_HOSTS: egressList,
  KEEL_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;

/** Parses the environment or exits with a message saying which variable to fix and how. */
export function parseEnv<T>(schema: z.ZodType<T>, env: NodeJS.ProcessEnv, processName: string): T {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  process.stderr.write(`keel ${processName}: invalid environment\n${lines.join("\n")}\nSee README.md "Configuration".\n`);
  process.exit(2);
}
