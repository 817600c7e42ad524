// One way to build the sandbox driver a process is configured for (the web process reads files
// through it; the worker runs tools through it). Apps parse their environment into this shape;
// core never reads process.env.
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../logger.js";
import type { SandboxDriver } from "./driver.js";
import { KubernetesSandboxDriver } from "./k8s/driver.js";
import { LocalSandboxDriver } from "./local-driver.js";
import type { SandboxStore } from "./store.js";
import type { TeamQuota, Toleration } from "./k8s/objects.js";

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
      teamQuota?: TeamQuota | undefined;
      priorityClassName?: string | undefined;
      /** in-cluster service account, else the default kubeconfig */ inCluster: boolean;
    };

export function createSandboxDriver(cfg: SandboxDriverConfig, deps: { store?: SandboxStore; logger?: Logger } = {}): SandboxDriver {
  if (cfg.driver === "local") {
    const { driver: _, ...local } = cfg;
    return new LocalSandboxDriver({ ...local, ...deps });
  }
  const kubeConfig = new KubeConfig();
  if (cfg.inCluster) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  return new KubernetesSandboxDriver({
    kubeConfig,
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
    ...(cfg.teamQuota ? { teamQuota: cfg.teamQuota } : {}),
    ...(cfg.priorityClassName ? { priorityClassName: cfg.priorityClassName } : {}),
    ...deps,
  });
}
