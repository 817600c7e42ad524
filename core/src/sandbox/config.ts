// One way to build the sandbox driver a process is configured for (the web process reads files
// through it; the worker runs tools through it). Apps parse their environment into this shape;
// core never reads process.env.
import { KubeConfig } from "@kubernetes/client-node";
import { UnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { SandboxDriver } from "./driver.js";
import { KubernetesSandboxDriver } from "./k8s/driver.js";
import { LocalSandboxDriver } from "./local-driver.js";
import type { SandboxStore } from "./store.js";
import type { TeamQuota, Toleration } from "./k8s/objects.js";
import { WORKER_POD_LABELS } from "./k8s/names.js";

export type SandboxDriverConfig =
  | { driver: "local"; baseDir: string; runtimeScript: string; allowUnsandboxed?: boolean; egressInternalAllow?: string[]; minFreeDiskMb?: number }
  | {
      driver: "kubernetes";
      image: string;
      namespacePrefix?: string;
      warmPoolReplicas?: number;
      storageClassName?: string | undefined;
      imagePullSecrets?: string[];
      egressInternalAllow?: string[];
      runtimeClass?: string | undefined;
      runtimeClasses?: string[] | undefined;
      nodeSelector?: Record<string, string> | undefined;
      tolerations?: Toleration[] | undefined;
      egressProxy?: { host: string; port: number } | undefined;
      /** KEEL_SECRETS_KEY's bytes: the runtime tokens are derived from it (k8s/tokens.ts). Required to build the driver. */
      tokenKey?: Buffer | undefined;
      /**
       * The namespace the workers run in (KEEL_SANDBOX_WORKERS_NAMESPACE: k8s/base/worker.yaml sets
       * it from the pod's own metadata.namespace): each team's sandbox ingress admits worker pods of
       * this namespace only, and image pull Secrets are copied from it. Unset: the in-cluster
       * ServiceAccount's namespace, else the driver's default (`keel`).
       */
      workersNamespace?: string | undefined;
      teamQuota?: TeamQuota | undefined;
      priorityClassName?: string | undefined;
      /** in-cluster service account, else the default kubeconfig */ inCluster: boolean;
    };

export function createSandboxDriver(cfg: SandboxDriverConfig, deps: { store?: SandboxStore; logger?: Logger } = {}): SandboxDriver {
  if (cfg.driver === "local") {
    const { driver: _, ...local } = cfg;
    return new LocalSandboxDriver({ ...local, ...deps });
  }
  if (!cfg.tokenKey) throw new UnavailableError("the kubernetes sandbox driver needs KEEL_SECRETS_KEY: each sandbox's runtime token is derived from it");
  const kubeConfig = new KubeConfig();
  if (cfg.inCluster) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  // loadFromCluster reads the ServiceAccount's namespace file into the context: where this pod runs.
  const workersNamespace = cfg.workersNamespace ?? (cfg.inCluster ? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace : undefined);
  return new KubernetesSandboxDriver({
    kubeConfig,
    tokenKey: cfg.tokenKey,
    image: cfg.image,
    namespacePrefix: cfg.namespacePrefix,
    warmPoolReplicas: cfg.warmPoolReplicas,
    ...(cfg.storageClassName ? { storageClassName: cfg.storageClassName } : {}),
    ...(cfg.imagePullSecrets ? { imagePullSecrets: cfg.imagePullSecrets } : {}),
    ...(cfg.egressInternalAllow ? { egressInternalAllow: cfg.egressInternalAllow } : {}),
    ...(cfg.runtimeClass ? { runtimeClass: cfg.runtimeClass } : {}),
    ...(cfg.runtimeClasses ? { runtimeClasses: cfg.runtimeClasses } : {}),
    ...(cfg.nodeSelector ? { nodeSelector: cfg.nodeSelector } : {}),
    ...(cfg.tolerations ? { tolerations: cfg.tolerations } : {}),
    ...(cfg.egressProxy ? { egressProxy: cfg.egressProxy } : {}),
    ...(workersNamespace ? { workers: { namespace: workersNamespace, podLabels: { ...WORKER_POD_LABELS } } } : {}),
    ...(cfg.teamQuota ? { teamQuota: cfg.teamQuota } : {}),
    ...(cfg.priorityClassName ? { priorityClassName: cfg.priorityClassName } : {}),
    ...deps,
  });
}
