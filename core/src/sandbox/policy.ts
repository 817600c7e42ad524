// A team's sandbox policy (stored with the team; an agent may narrow it). Parsed with zod so the
// defaults live in one place and a bad policy fails with a readable message.
import { z } from "zod";
import { parseEgressEntry } from "./egress.js";

export const sandboxResources = z.object({
  /** CPU seconds per process (RLIMIT_CPU locally; a pod's CPU limit is separate). */
  cpuSeconds: z.number().int().positive().max(86_400).default(60),
  /**
   * Memory, MB: per process (RLIMIT_AS) and, locally where the host allows a memory cgroup, the
   * whole sandbox's (runtime and tmpfs included; cgroup.ts). The pod's memory limit on Kubernetes.
   */
  memoryMb: z.number().int().min(16).max(65_536).default(1024),
  /** Processes and threads in the sandbox (RLIMIT_NPROC in the sandbox's user namespace). */
  maxProcesses: z.number().int().min(8).max(4096).default(256),
  /** Largest file a command may write, MB (RLIMIT_FSIZE). Not a disk quota. */
  maxFileSizeMb: z.number().int().positive().max(65_536).default(512),
  /**
   * The workspace's size, MB: locally its own ext4 file system (disk-quota.ts; fixed when the
   * sandbox is created; a full workspace fails writes with ENOSPC inside, the host's disk is not
   * touched); on Kubernetes the sandbox's PersistentVolumeClaim (kept across suspend).
   */
  workspaceMb: z.number().int().min(16).max(1_048_576).default(1024),
});

const egressEntry = z
  .string()
  .min(1)
  .max(300)
  .superRefine((entry, ctx) => {
    const r = parseEgressEntry(entry);
    if (r instanceof Error) ctx.addIssue({ code: "custom", message: r.message });
  });

export const sandboxEgress = z.union([
  z.literal("none"),
  /**
   * Destinations allowed (grammar in egress.ts: name, *.suffix, IP, CIDR, each optionally :port).
   * Local driver: enforced by a per-sandbox egress proxy. Kubernetes: NetworkPolicy, which takes
   * IPs and CIDRs only.
   */
  z.object({ allow: z.array(egressEntry).max(256) }),
]);

export const sandboxPolicy = z.object({
  /** Image or SandboxTemplate name for the Kubernetes driver; the local driver ignores it. */
  template: z.string().min(1).max(200).default("default"),
  /**
   * Kubernetes: the RuntimeClass this team's sandboxes run with (gVisor, Kata), one the operator
   * offers (KEEL_SANDBOX_RUNTIME_CLASSES); unset: the operator's default. The local driver ignores it.
   */
  runtimeClass: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "runtimeClass must be a RuntimeClass name")
    .optional(),
  resources: sandboxResources.prefault({}),
  egress: sandboxEgress.default("none"),
  /** Names of the team's secrets exposed as environment variables in the sandbox. */
  secrets: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "secret names must be valid environment variable names"))
    .max(100)
    .default([]),
  /** Suspend (stop the runtime, keep files) after this long without a call. */
  idleTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(15 * 60_000),
  /** Terminate (delete files) this long after creation. */
  ttlMs: z
    .number()
    .int()
    .positive()
    .default(24 * 3_600_000),
});

export type SandboxPolicy = z.infer<typeof sandboxPolicy>;
export type SandboxPolicyInput = z.input<typeof sandboxPolicy>;

export function parseSandboxPolicy(input: unknown): SandboxPolicy {
  return sandboxPolicy.parse(input ?? {});
}

/** Only the secrets the policy names, so another team's or an unlisted secret never enters. */
export function exposedSecrets(policy: SandboxPolicy, secrets: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of policy.secrets) if (Object.hasOwn(secrets, name)) out[name] = secrets[name]!;
  return out;
}
