// The Kubernetes objects of a team (namespace, Secret, SandboxTemplate, SandboxWarmPool) and of a
// session (SandboxClaim), as plain data. Shapes follow the agent-sandbox v1.0.1 v1beta1 CRDs
// (k8s/agent-sandbox/v1.0.1/crds/); the tests apply them to the real API server.
import { isIP } from "node:net";
import { ValidationError } from "../../errors.js";
import type { SandboxPolicy } from "../policy.js";
import { ANNOTATIONS, API_VERSION, CONTAINER, EXT_GROUP, LABELS, MANAGER, SECRET_NAME, TOKEN_ENV } from "./names.js";

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
    ownerReferences?: { uid: string; kind: string; name: string }[];
  };
  spec?: any;
  status?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};

export type TemplateConfig = {
  image: string;
  runtimePort: number;
  cpu: string;
  /** Where the workers run: the only pods allowed to reach the runtime port. */
  workers: { namespace: string; podLabels: Record<string, string> };
  /** Warm mode: one token for the team's sandboxes, baked into the template (see driver.ts). */
  teamToken?: string;
  /** StorageClass of the workspace PVC; unset: the cluster's default class. */
  storageClassName?: string;
  /** Secrets (copied into the team's namespace) the kubelet uses to pull `image`. */
  imagePullSecrets?: string[];
};

const teamLabels = (teamId: string) => ({ [LABELS.managedBy]: MANAGER, [LABELS.team]: teamId });

export function namespaceObject(name: string, teamId: string): K8sObject {
  // restricted Pod Security: the runtime pod satisfies it (non-root, no privilege escalation).
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { ...teamLabels(teamId), "pod-security.kubernetes.io/enforce": "restricted" } } };
}

export function secretObject(namespace: string, teamId: string, secrets: Record<string, string>): K8sObject {
  return { apiVersion: "v1", kind: "Secret", metadata: { name: SECRET_NAME, namespace, labels: teamLabels(teamId) }, stringData: secrets };
}

/** A copy of an image pull Secret (type and data as they are) for a team's namespace. */
export function pullSecretCopy(source: K8sObject & { type?: string }, namespace: string, teamId: string): K8sObject & { type?: string } {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: source.metadata.name, namespace, labels: teamLabels(teamId) },
    ...(source.type ? { type: source.type } : {}),
    data: source.data ?? {},
  };
}

/**
 * NetworkPolicy egress from the team's allow-list. NetworkPolicy matches IP blocks and ports,
 * never hostnames, so a hostname is refused here instead of silently allowing nothing (or
 * everything). `none` → no rule: the controller's policy lists Egress, so all egress is denied.
 */
export function egressRules(egress: SandboxPolicy["egress"]): unknown[] {
  if (egress === "none") return [];
  return egress.allow.map((entry) => {
    // 203.0.113.7, 203.0.113.0/24, 203.0.113.0/24:443, 2001:db8::/32, [2001:db8::/32]:443
    const m =
      /^\[([0-9a-fA-F:.]+)(\/\d{1,3})?\](?::(\d{1,5}))?$/.exec(entry) ??
      /^([0-9.]+)(\/\d{1,2})?(?::(\d{1,5}))?$/.exec(entry) ??
      /^([0-9a-fA-F:.]+)(\/\d{1,3})?()$/.exec(entry);
    const family = m ? isIP(m[1]!) : 0;
    if (!m || !family) {
      throw new ValidationError(
        `egress allow-list entry "${entry}" is not an IP address or CIDR: Kubernetes NetworkPolicy cannot match hostnames. List the CIDRs to allow (e.g. 203.0.113.0/24:443), or route egress through a proxy and allow its address`,
        { entry },
      );
    }
    const cidr = `${m[1]}${m[2] ?? (family === 4 ? "/32" : "/128")}`;
    return { to: [{ ipBlock: { cidr } }], ...(m[3] ? { ports: [{ protocol: "TCP", port: Number(m[3]) }] } : {}) };
  });
}

/**
 * The runtime's limits in a pod (sandbox/src/exec.ts): memory is bounded by the pod's limit, and
 * processes by the kubelet's pids limit, since RLIMIT_NPROC would count every uid-1000 process of
 * the node against each sandbox.
 */
export function podRuntimeLimits(policy: SandboxPolicy): string {
  return JSON.stringify({ ...policy.resources, memoryInGroup: true, processesPerUidShared: true });
}

export function templateObject(namespace: string, name: string, teamId: string, policy: SandboxPolicy, cfg: TemplateConfig, configHash: string): K8sObject {
  const memory = `${policy.resources.memoryMb}Mi`;
  const env = [
    { name: "KEEL_RUNTIME_LIMITS", value: podRuntimeLimits(policy) },
    { name: "HOME", value: "/workspace" },
    ...(cfg.teamToken ? [{ name: TOKEN_ENV, value: cfg.teamToken }] : []),
    // env + secretKeyRef rather than envFrom: agent-sandbox refuses claim env injection into a
    // container that uses envFrom (it could not tell which variables a claim may override).
    ...policy.secrets.map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: SECRET_NAME, key, optional: true } } })),
  ];
  return {
    apiVersion: `${EXT_GROUP}/${API_VERSION}`,
    kind: "SandboxTemplate",
    metadata: { name, namespace, labels: teamLabels(teamId), annotations: { [ANNOTATIONS.configHash]: configHash } },
    spec: {
      // Cold mode sends each claim's token as claim env (agent-sandbox then bypasses the pool).
      envVarsInjectionPolicy: cfg.teamToken ? "Disallowed" : "Allowed",
      networkPolicyManagement: "Managed",
      networkPolicy: {
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": cfg.workers.namespace } },
                podSelector: { matchLabels: cfg.workers.podLabels },
              },
            ],
            ports: [{ protocol: "TCP", port: cfg.runtimePort }],
          },
        ],
        egress: egressRules(policy.egress),
      },
      podTemplate: {
        metadata: { labels: teamLabels(teamId) },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(cfg.imagePullSecrets?.length ? { imagePullSecrets: cfg.imagePullSecrets.map((name) => ({ name })) } : {}),
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: CONTAINER,
              image: cfg.image,
              command: ["/usr/bin/tini", "--", "node", "/app/sandbox/dist/runtime.mjs", "--port", String(cfg.runtimePort), "--workspace", "/workspace"],
              ports: [{ name: "runtime", containerPort: cfg.runtimePort }],
              env,
              // /healthz needs the token, so readiness is "the port accepts connections".
              readinessProbe: { tcpSocket: { port: cfg.runtimePort }, periodSeconds: 2 },
              resources: { requests: { cpu: "100m", memory: `${Math.min(policy.resources.memoryMb, 256)}Mi` }, limits: { cpu: cfg.cpu, memory } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
              volumeMounts: [
                { name: "workspace", mountPath: "/workspace" },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
          // "workspace" comes from volumeClaimTemplates below: agent-sandbox adds the volume.
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: `${Math.min(policy.resources.memoryMb, 1024)}Mi` } }],
        },
      },
      // The workspace is a PVC `workspace-<sandbox>` owned by the Sandbox: it outlives the pod (idle
      // suspend, eviction, a drained node) and is deleted with the claim. An emptyDir lost the
      // files on every suspend, and the next turn found an empty workspace without a word.
      volumeClaimTemplates: [
        {
          metadata: { name: "workspace", labels: teamLabels(teamId) },
          spec: {
            accessModes: ["ReadWriteOnce"],
            resources: { requests: { storage: `${policy.resources.workspaceMb}Mi` } },
            ...(cfg.storageClassName ? { storageClassName: cfg.storageClassName } : {}),
          },
        },
      ],
    },
  };
}

export function warmPoolObject(namespace: string, name: string, teamId: string, replicas: number): K8sObject {
  return {
    apiVersion: `${EXT_GROUP}/${API_VERSION}`,
    kind: "SandboxWarmPool",
    metadata: { name, namespace, labels: teamLabels(teamId) },
    spec: { replicas, sandboxTemplateRef: { name } },
  };
}

export function claimObject(o: {
  namespace: string;
  name: string;
  teamId: string;
  sessionId: string;
  pool: string;
  policy: SandboxPolicy;
  now: number;
  token?: string;
}): K8sObject {
  return {
    apiVersion: `${EXT_GROUP}/${API_VERSION}`,
    kind: "SandboxClaim",
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: { ...teamLabels(o.teamId), [LABELS.session]: o.sessionId },
      annotations: { [ANNOTATIONS.ttlMs]: String(o.policy.ttlMs), [ANNOTATIONS.idleTimeoutMs]: String(o.policy.idleTimeoutMs) },
    },
    spec: {
      warmPoolRef: { name: o.pool },
      // TTL: the controller deletes the claim at shutdownTime, and the GC its Sandbox and Pod.
      lifecycle: { shutdownTime: new Date(o.now + o.policy.ttlMs).toISOString().replace(/\.\d{3}Z$/, "Z"), shutdownPolicy: "Delete" },
      ...(o.token ? { env: [{ name: TOKEN_ENV, value: o.token, containerName: CONTAINER }] } : {}),
    },
  };
}
