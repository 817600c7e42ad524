// Sandbox settings, shared by the worker (runs tools in sandboxes) and the web process (shows and
// starts them): both build their driver with sandboxDriverConfig() from the same parsed values,
// so a sandbox started from the dashboard is the one the worker would have started.
import path from "node:path";
import { z } from "zod";
import type { SandboxDriverConfig } from "../sandbox/config.js";
import { DEFAULT_TEAM_QUOTA as Q } from "../sandbox/k8s/objects.js";
import { SANDBOX_PRIORITY_CLASS } from "../sandbox/k8s/names.js";
import { egressList } from "./model.js";
import { bool, commaList, int, optional, unsetIfEmpty } from "./parse.js";

const DNS_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;

/**
 * `repoRoot`: where the defaults of the local driver live (<root>/.keel/sandboxes and
 * <root>/sandbox/dist/runtime.mjs). The process knows it (from its own file, or the web's cwd).
 */
export function sandboxEnv(opts: { repoRoot: string }) {
  return {
    /** local: bubblewrap on this machine; kubernetes: agent-sandbox claims in the cluster (in-cluster config, else the kubeconfig). */
    KEEL_SANDBOX_DRIVER: z.enum(["local", "kubernetes"]).default("local"),
    /** kubernetes: the Keel image sandboxes run (it holds the sandbox runtime). Required with that driver. */
    KEEL_SANDBOX_IMAGE: optional(z.string()),
    /** kubernetes: each team's sandboxes live in namespace <prefix><teamId>. */
    KEEL_SANDBOX_NAMESPACE_PREFIX: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "must be 1-40 lowercase letters, digits or '-', starting with a letter or digit (it prefixes a namespace name)")
      .default("keel-team-"),
    /** kubernetes: sandboxes kept started per team (SandboxWarmPool replicas). */
    KEEL_SANDBOX_WARM_POOL: int(0, 0),
    /** kubernetes: StorageClass of each sandbox's workspace PVC (size from the team's policy); unset: the cluster default. */
    KEEL_SANDBOX_STORAGE_CLASS: optional(z.string().regex(/^[a-z0-9][a-z0-9.-]{0,252}$/, "must be a StorageClass name")),
    /** kubernetes: image pull Secrets in the worker's namespace, comma-separated; copied into every team namespace for the sandbox image. */
    KEEL_SANDBOX_IMAGE_PULL_SECRETS: z.preprocess(
      (v) =>
        typeof v === "string"
          ? v
              .split(",")
              .map((x) => x.trim())
              .filter(Boolean)
          : v,
      z.array(z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "each name must be a Secret name")).default([]),
    ),
    /** kubernetes: the RuntimeClass every sandbox pod runs with (gVisor, Kata: e.g. gvisor); unset: the nodes' default runtime. */
    KEEL_SANDBOX_RUNTIME_CLASS: optional(z.string().regex(DNS_NAME, "must be a RuntimeClass name")),
    /** kubernetes: RuntimeClasses a team's sandbox policy may pick instead (runtimeClass), comma-separated; unset: none. */
    KEEL_SANDBOX_RUNTIME_CLASSES: commaList(z.array(z.string().regex(DNS_NAME, "each name must be a RuntimeClass name"))),
    /** kubernetes: node labels sandbox pods are scheduled on (dedicated nodes), comma-separated key=value. */
    KEEL_SANDBOX_NODE_SELECTOR: commaList(
      z.array(
        z.string().refine((e) => {
          const [k = "", v, ...rest] = e.split("=");
          return rest.length === 0 && v !== undefined && LABEL_KEY.test(k) && LABEL_VALUE.test(v);
        }, "each entry must be key=value (a node label)"),
      ),
    ).transform((v) => v && Object.fromEntries(v.map((e) => e.split("=") as [string, string]))),
    /** kubernetes: taints sandbox pods tolerate (dedicated nodes), comma-separated key=value:Effect or key:Effect. */
    KEEL_SANDBOX_TOLERATIONS: commaList(
      z.array(
        z
          .string()
          .regex(
            /^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$/,
            "each entry must be key=value:Effect or key:Effect (Effect: NoSchedule, PreferNoSchedule or NoExecute)",
          ),
      ),
    ).transform((v) => v?.map(parseToleration)),
    /**
     * kubernetes: the shared egress proxy (k8s/base/egress-proxy.yaml) as host:port, resolved by the
     * worker; host names in teams' egress allow-lists go through it. Unset: allow-lists take
     * addresses and CIDRs only (NetworkPolicy cannot match names).
     */
    KEEL_SANDBOX_EGRESS_PROXY: optional(
      z
        .string()
        .regex(/^[a-z0-9.-]+:\d{1,5}$/, "must be host:port (e.g. keel-egress:3128)")
        .transform((v) => {
          const i = v.lastIndexOf(":");
          return { host: v.slice(0, i), port: Number(v.slice(i + 1)) };
        }),
    ),
    /**
     * kubernetes: the namespace the workers run in (k8s/base/worker.yaml sets it from the pod's own
     * metadata.namespace, the downward API): each team's sandboxes admit worker pods of this
     * namespace only, and image pull Secrets are copied from it. Unset: the in-cluster
     * ServiceAccount's namespace, else `keel`.
     */
    KEEL_SANDBOX_WORKERS_NAMESPACE: optional(z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be a namespace name")),
    /**
     * kubernetes: the PriorityClass of every sandbox pod (k8s/base/priority.yaml: keel-sandbox, below
     * the platform's keel-platform, never preempting). admission.yaml lets the worker set no other:
     * change both together.
     */
    KEEL_SANDBOX_PRIORITY_CLASS: z.preprocess(unsetIfEmpty, z.string().regex(DNS_NAME, "must be a PriorityClass name").default(SANDBOX_PRIORITY_CLASS)),
    // kubernetes: each team namespace's ResourceQuota (what all of a team's sandboxes use together)
    // and LimitRange (what one sandbox may ask for). Re-applied by every worker when it first
    // prepares a team, so the values here win over a hand edit.
    /** Pods of one team at once (a running sandbox is one pod; a suspended one none). */
    KEEL_SANDBOX_QUOTA_PODS: int(Q.pods, 0),
    /** CPUs (requests and limits) of one team's pods together, a Kubernetes quantity: "20", "7500m". */
    KEEL_SANDBOX_QUOTA_CPU: z.preprocess(
      unsetIfEmpty,
      z
        .string()
        .regex(/^(\d+(\.\d+)?|\d+m)$/, "must be a CPU quantity such as 20, 2.5 or 500m")
        .default(Q.cpu),
    ),
    /** Memory (requests and limits) of one team's pods together, MB. */
    KEEL_SANDBOX_QUOTA_MEMORY_MB: int(Q.memoryMb, 0),
    /** Ephemeral storage (requests and limits) of one team's pods together, MB (each sandbox: its /tmp, up to 1024, plus 512). */
    KEEL_SANDBOX_QUOTA_EPHEMERAL_MB: int(Q.ephemeralMb, 0),
    /** Workspace volumes (PVCs) of one team, suspended sandboxes' included. */
    KEEL_SANDBOX_QUOTA_PVCS: int(Q.pvcs, 0),
    /** Requested size of one team's workspace volumes together, MB. */
    KEEL_SANDBOX_QUOTA_STORAGE_MB: int(Q.storageMb, 0),
    /** The largest workspace one sandbox may have, MB: a team policy asking for more is refused (422). */
    KEEL_SANDBOX_MAX_WORKSPACE_MB: int(Q.maxWorkspaceMb, 16),
    /** The largest memory limit one sandbox may have, MB: a team policy asking for more is refused (422). */
    KEEL_SANDBOX_MAX_MEMORY_MB: int(Q.maxMemoryMb, 16),
    /** Set by Kubernetes in every pod: the kubernetes driver then uses the pod's service account instead of a kubeconfig. */
    KUBERNETES_SERVICE_HOST: optional(z.string()),
    /** local: where sandboxes keep their workspaces (persist across worker restarts; the web process must see the worker's). */
    KEEL_SANDBOX_DIR: optional(z.string()).transform((v) => v ?? path.join(opts.repoRoot, ".keel", "sandboxes")),
    /** local: the bundled sandbox runtime (`npm run setup` builds it; the egress proxy sits beside it). */
    KEEL_SANDBOX_RUNTIME: optional(z.string()).transform((v) => v ?? path.join(opts.repoRoot, "sandbox", "dist", "runtime.mjs")),
    /** local: run sandbox tools WITHOUT isolation when bubblewrap is missing. Never in production. */
    KEEL_ALLOW_UNSANDBOXED: bool(false),
    /**
     * local: internal ranges (loopback, private, CGNAT, ULA, metadata, this host's own addresses)
     * sandboxes' egress allow-lists may reach, comma-separated addresses/CIDRs with optional :port
     * (10.0.0.0/8, 192.168.1.5:5432). Unset: none; no team policy opens them by itself.
     */
    KEEL_SANDBOX_EGRESS_INTERNAL: egressList,
    /** local: no new sandbox when the disk under KEEL_SANDBOX_DIR has less free space than this, MB (0: no floor). */
    KEEL_SANDBOX_MIN_FREE_MB: int(1024, 0),
  };
}

type SandboxShape = ReturnType<typeof sandboxEnv>;
export type SandboxEnv = z.output<z.ZodObject<SandboxShape>>;

/** Cross-field rules of the sandbox settings, for the process schema's superRefine. */
export function sandboxEnvRules(env: Pick<SandboxEnv, "KEEL_SANDBOX_DRIVER" | "KEEL_SANDBOX_IMAGE">, ctx: z.RefinementCtx): void {
  if (env.KEEL_SANDBOX_DRIVER === "kubernetes" && !env.KEEL_SANDBOX_IMAGE) {
    ctx.addIssue({
      code: "custom",
      path: ["KEEL_SANDBOX_IMAGE"],
      message: "KEEL_SANDBOX_DRIVER=kubernetes needs KEEL_SANDBOX_IMAGE (the Keel image, which holds the sandbox runtime)",
    });
  }
}

/**
 * The worker's rule: on Kubernetes it derives each sandbox's runtime token from KEEL_SECRETS_KEY
 * (core/src/sandbox/k8s/tokens.ts), so it cannot start without one. (`keel up` generates its key
 * after parsing, and the web process reaches sandboxes through the workers.)
 */
export function sandboxWorkerRules(env: Pick<SandboxEnv, "KEEL_SANDBOX_DRIVER"> & { KEEL_SECRETS_KEY?: string | undefined }, ctx: z.RefinementCtx): void {
  if (env.KEEL_SANDBOX_DRIVER === "kubernetes" && !env.KEEL_SECRETS_KEY) {
    ctx.addIssue({
      code: "custom",
      path: ["KEEL_SECRETS_KEY"],
      message:
        "KEEL_SANDBOX_DRIVER=kubernetes needs KEEL_SECRETS_KEY: workers derive each sandbox's runtime token from it (openssl rand -base64 32; the same on every worker)",
    });
  }
}

/** The one mapping from parsed settings to the driver's config (createSandboxDriver). */
export function sandboxDriverConfig(env: SandboxEnv & { KEEL_SECRETS_KEY?: string | undefined }): SandboxDriverConfig {
  if (env.KEEL_SANDBOX_DRIVER === "kubernetes") {
    return {
      driver: "kubernetes",
      // sandboxEnvRules makes it required; "" only reaches here from a schema without the rule.
      image: env.KEEL_SANDBOX_IMAGE ?? "",
      namespacePrefix: env.KEEL_SANDBOX_NAMESPACE_PREFIX,
      warmPoolReplicas: env.KEEL_SANDBOX_WARM_POOL,
      storageClassName: env.KEEL_SANDBOX_STORAGE_CLASS,
      imagePullSecrets: env.KEEL_SANDBOX_IMAGE_PULL_SECRETS,
      egressInternalAllow: env.KEEL_SANDBOX_EGRESS_INTERNAL,
      runtimeClass: env.KEEL_SANDBOX_RUNTIME_CLASS,
      runtimeClasses: env.KEEL_SANDBOX_RUNTIME_CLASSES,
      nodeSelector: env.KEEL_SANDBOX_NODE_SELECTOR,
      tolerations: env.KEEL_SANDBOX_TOLERATIONS,
      egressProxy: env.KEEL_SANDBOX_EGRESS_PROXY,
      workersNamespace: env.KEEL_SANDBOX_WORKERS_NAMESPACE,
      priorityClassName: env.KEEL_SANDBOX_PRIORITY_CLASS,
      teamQuota: {
        pods: env.KEEL_SANDBOX_QUOTA_PODS,
        cpu: env.KEEL_SANDBOX_QUOTA_CPU,
        memoryMb: env.KEEL_SANDBOX_QUOTA_MEMORY_MB,
        ephemeralMb: env.KEEL_SANDBOX_QUOTA_EPHEMERAL_MB,
        pvcs: env.KEEL_SANDBOX_QUOTA_PVCS,
        storageMb: env.KEEL_SANDBOX_QUOTA_STORAGE_MB,
        maxWorkspaceMb: env.KEEL_SANDBOX_MAX_WORKSPACE_MB,
        maxMemoryMb: env.KEEL_SANDBOX_MAX_MEMORY_MB,
      },
      inCluster: Boolean(env.KUBERNETES_SERVICE_HOST),
      tokenKey: env.KEEL_SECRETS_KEY ? Buffer.from(env.KEEL_SECRETS_KEY, "base64") : undefined,
    };
  }
  return {
    driver: "local",
    baseDir: env.KEEL_SANDBOX_DIR,
    runtimeScript: env.KEEL_SANDBOX_RUNTIME,
    allowUnsandboxed: env.KEEL_ALLOW_UNSANDBOXED,
    egressInternalAllow: env.KEEL_SANDBOX_EGRESS_INTERNAL,
    minFreeDiskMb: env.KEEL_SANDBOX_MIN_FREE_MB,
  };
}

/** "key=value:Effect" / "key:Effect" → a pod toleration. */
function parseToleration(entry: string): { key: string; operator: "Equal" | "Exists"; value?: string; effect: string } {
  const at = entry.lastIndexOf(":");
  const [key = "", value] = entry.slice(0, at).split("=");
  const effect = entry.slice(at + 1);
  return value === undefined ? { key, operator: "Exists", effect } : { key, operator: "Equal", value, effect };
}
