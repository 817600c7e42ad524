// The Kubernetes objects of a team (namespace, Secret, SandboxTemplate, SandboxWarmPool) and of a
// session (SandboxClaim), as plain data. Shapes follow the agent-sandbox v1.0.1 v1beta1 CRDs
// (k8s/agent-sandbox/v1.0.1/crds/); the tests apply them to the real API server.
import { BlockList } from "node:net";
import { INTERNAL_RANGES } from "@keel/sandbox/internal-addresses";
import { NO_PROXY, PROXY_URL_VARS } from "@keel/sandbox/egress-grant";
import { ValidationError } from "../../errors.js";
import { parseEgressEntry } from "../egress.js";
import type { SandboxPolicy } from "../policy.js";
import {
  ANNOTATIONS,
  API_VERSION,
  CONTAINER,
  EGRESS_PROXY_KEY,
  EXT_GROUP,
  LABELS,
  LIMITS_NAME,
  MANAGER,
  runtimeSecretName,
  secretName,
  START_TOKEN_ENV,
  START_TOKEN_KEY,
} from "./names.js";

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
  /** StorageClass of the workspace PVC; unset: the cluster's default class. */
  storageClassName?: string;
  /** Secrets (copied into the team's namespace) the kubelet uses to pull `image`. */
  imagePullSecrets?: string[];
  /** Internal ranges the operator opened to egress allow-lists (KEEL_SANDBOX_EGRESS_INTERNAL). */
  egressInternalAllow?: string[];
  /** The pod's RuntimeClass (the team's pick, else the operator's default); unset: the node's default runtime. */
  runtimeClassName?: string;
  /** Dedicated nodes for sandboxes (the operator's). */
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  /** Host names in the allow-list: the shared egress proxy the pods go through (egressRules), and a digest of their grant. */
  egressProxy?: EgressProxyTarget & { grantDigest: string };
  /** The sandboxes' PriorityClass (k8s/base/priority.yaml; admission.yaml pins it). */
  priorityClassName?: string;
};

/** Where the shared egress proxy's pods are (the sandbox NetworkPolicy lets a template with host names reach them). */
export type EgressProxyTarget = { namespace: string; podLabels: Record<string, string>; port: number };

/**
 * What one team's sandboxes may use together (a ResourceQuota per team namespace) and what one
 * sandbox may ask for (a LimitRange): the operator's, KEEL_SANDBOX_QUOTA_* and KEEL_SANDBOX_MAX_*.
 * Sizes in MB (Mi), like the team policy's; cpu a Kubernetes quantity ("20", "500m").
 */
export type TeamQuota = {
  /** Pods (a sandbox is one pod while it runs; suspended ones have none). */
  pods: number;
  /** requests.cpu and limits.cpu of every pod together. */
  cpu: string;
  /** requests.memory and limits.memory together, MB. */
  memoryMb: number;
  /** requests.ephemeral-storage and limits.ephemeral-storage together, MB. */
  ephemeralMb: number;
  /** PersistentVolumeClaims: one workspace per sandbox, suspended ones included. */
  pvcs: number;
  /** requests.storage of every PVC together, MB. */
  storageMb: number;
  /** LimitRange: largest workspace PVC, MB (a policy asking for more is a 422 before any API call). */
  maxWorkspaceMb: number;
  /** LimitRange: largest memory limit of a sandbox container, MB (likewise a 422). */
  maxMemoryMb: number;
};

export const DEFAULT_TEAM_QUOTA: TeamQuota = {
  pods: 20,
  cpu: "20",
  memoryMb: 40_960,
  ephemeralMb: 40_960,
  pvcs: 40,
  storageMb: 204_800,
  maxWorkspaceMb: 20_480,
  maxMemoryMb: 8_192,
};

/** The env variable that sets each quota key: an over-quota message names what to raise. */
export const QUOTA_SETTING: Record<string, string> = {
  pods: "KEEL_SANDBOX_QUOTA_PODS",
  "requests.cpu": "KEEL_SANDBOX_QUOTA_CPU",
  "limits.cpu": "KEEL_SANDBOX_QUOTA_CPU",
  "requests.memory": "KEEL_SANDBOX_QUOTA_MEMORY_MB",
  "limits.memory": "KEEL_SANDBOX_QUOTA_MEMORY_MB",
  "requests.ephemeral-storage": "KEEL_SANDBOX_QUOTA_EPHEMERAL_MB",
  "limits.ephemeral-storage": "KEEL_SANDBOX_QUOTA_EPHEMERAL_MB",
  persistentvolumeclaims: "KEEL_SANDBOX_QUOTA_PVCS",
  "requests.storage": "KEEL_SANDBOX_QUOTA_STORAGE_MB",
};

/** A sandbox container's scratch space: its /tmp emptyDir (sizeLimit) plus room for logs. */
const MAX_TMP_MB = 1024;
const tmpMb = (policy: SandboxPolicy) => Math.min(policy.resources.memoryMb, MAX_TMP_MB);
export const ephemeralLimitMb = (policy: SandboxPolicy) => tmpMb(policy) + 512;

export type Toleration = { key: string; operator: "Equal" | "Exists"; value?: string; effect: string };

const teamLabels = (teamId: string) => ({ [LABELS.managedBy]: MANAGER, [LABELS.team]: teamId });

export function namespaceObject(name: string, teamId: string): K8sObject {
  // restricted Pod Security: the runtime pod satisfies it (non-root, no privilege escalation).
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { ...teamLabels(teamId), "pod-security.kubernetes.io/enforce": "restricted" } } };
}

/** The team's ResourceQuota: no scopes, so every pod and PVC in the namespace counts. */
export function quotaObject(namespace: string, teamId: string, q: TeamQuota): K8sObject {
  return {
    apiVersion: "v1",
    kind: "ResourceQuota",
    metadata: { name: LIMITS_NAME, namespace, labels: teamLabels(teamId) },
    spec: {
      hard: {
        pods: String(q.pods),
        "requests.cpu": q.cpu,
        "limits.cpu": q.cpu,
        "requests.memory": `${q.memoryMb}Mi`,
        "limits.memory": `${q.memoryMb}Mi`,
        "requests.ephemeral-storage": `${q.ephemeralMb}Mi`,
        "limits.ephemeral-storage": `${q.ephemeralMb}Mi`,
        persistentvolumeclaims: String(q.pvcs),
        "requests.storage": `${q.storageMb}Mi`,
      },
    },
  };
}

/**
 * The team's LimitRange: the largest sandbox container and workspace the API server admits. The
 * ephemeral-storage defaults are for pods of Sandboxes made before Keel stated it (a Sandbox keeps
 * the pod template it was made with): without them the quota refuses such a pod on resume.
 */
export function limitRangeObject(namespace: string, teamId: string, q: TeamQuota, cpu: string): K8sObject {
  return {
    apiVersion: "v1",
    kind: "LimitRange",
    metadata: { name: LIMITS_NAME, namespace, labels: teamLabels(teamId) },
    spec: {
      limits: [
        {
          type: "Container",
          // The API server makes max the default limit too. (No `default` written here:
          // client-node's serializer drops it, its model names the field `_default`.)
          max: { cpu, memory: `${q.maxMemoryMb}Mi`, "ephemeral-storage": `${MAX_TMP_MB + 512}Mi` },
          defaultRequest: { "ephemeral-storage": "256Mi" },
        },
        { type: "PersistentVolumeClaim", max: { storage: `${q.maxWorkspaceMb}Mi` } },
      ],
    },
  };
}

export function secretObject(namespace: string, template: string, teamId: string, secrets: Record<string, string>): K8sObject {
  // `data`, not `stringData`: server-side apply owns each data key it writes, so a secret the team
  // revoked (no longer in `secrets`) is removed at the next apply. stringData is converted on the
  // server and its keys were never owned: a revoked secret stayed in the cluster.
  const data = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]));
  return { apiVersion: "v1", kind: "Secret", metadata: { name: secretName(template), namespace, labels: teamLabels(teamId) }, data } as K8sObject;
}

/**
 * The template's runtime Secret, read by its pods' env by reference (never a value in a pod spec):
 * the start token (tokens.ts) and, with host names in the allow-list, the egress proxy URL (its
 * password is the template's signed grant).
 */
export function runtimeSecretObject(namespace: string, template: string, teamId: string, startToken: string, egressProxyUrl?: string): K8sObject {
  const b64 = (v: string) => Buffer.from(v, "utf8").toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: runtimeSecretName(template), namespace, labels: teamLabels(teamId) },
    data: { [START_TOKEN_KEY]: b64(startToken), ...(egressProxyUrl ? { [EGRESS_PROXY_KEY]: b64(egressProxyUrl) } : {}) },
  } as K8sObject;
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

type Range = { address: string; prefix: number; family: "ipv4" | "ipv6" };
/** A range with its matcher and its text as an ipBlock (network address / prefix), made once. */
type Block = Range & { list: BlockList; text: string };

function blockOf(r: Range): Block {
  const list = new BlockList();
  list.addSubnet(r.address, r.prefix, r.family);
  return { ...r, list, text: `${networkOf(r)}/${r.prefix}` };
}

/** `inner` lies inside `outer` (equal counts). */
const within = (inner: Range, outer: Block) => inner.family === outer.family && inner.prefix >= outer.prefix && outer.list.check(inner.address, inner.family);

const canonicalIpv6 = (address: string) => new URL(`http://[${address}]/`).hostname.slice(1, -1);

/** The network address of a range (host bits cleared), as Kubernetes writes an ipBlock. */
function networkOf({ address, prefix, family }: Range): string {
  const [bits, width] = family === "ipv4" ? [32, 8] : [128, 16];
  let groups: number[];
  if (family === "ipv4") groups = address.split(".").map(Number);
  else {
    const [head = "", tail = ""] = canonicalIpv6(address).split("::"); // canonical: IPv4 tails in hex
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) => parseInt(g, 16));
  }
  const value = groups.reduce((v, g) => (v << BigInt(width)) | BigInt(g), 0n) & ~((1n << BigInt(bits - prefix)) - 1n);
  const out = groups.map((_, i) => Number((value >> BigInt((groups.length - 1 - i) * width)) & ((1n << BigInt(width)) - 1n)));
  return family === "ipv4" ? out.join(".") : canonicalIpv6(out.map((n) => n.toString(16)).join(":"));
}

const INTERNAL = INTERNAL_RANGES.map(([address, prefix, family, what]) => ({ ...blockOf({ address, prefix, family }), what }));

/**
 * The team's egress allow-list as NetworkPolicy rules (`none` → no rule: the controller's policy
 * lists Egress, so all egress is denied), with the same meaning as on the local driver
 * (sandbox/src/egress-rules.ts): an address rule never reaches an internal address by itself.
 * Every internal range (sandbox/src/internal-addresses.ts: link-local and the cloud metadata
 * server, private networks where the cluster's Services, pods and nodes live, CGNAT, ULA, …)
 * inside an allowed CIDR is left out with `except`, so `0.0.0.0/0` means "the internet" and not
 * the metadata server or the API server; a rule wholly inside an internal range is refused with
 * the reason. A host name (NetworkPolicy cannot match one) becomes one rule to the shared egress
 * proxy's pods (`proxy`), which decide on names with the template's signed grant; with no proxy it
 * is refused with what to do instead. `internalAllow`
 * (KEEL_SANDBOX_EGRESS_INTERNAL, the operator's) opens internal ranges again: those are not carved
 * out, and a team rule inside one is kept.
 */
export function egressRules(egress: SandboxPolicy["egress"], internalAllow: string[] = [], proxy?: EgressProxyTarget): unknown[] {
  if (egress === "none") return [];
  // Address entries only, as the local driver reads them (a name there opens nothing on either).
  const opened = internalAllow.flatMap((e) => {
    const r = parseEgressEntry(e);
    return r instanceof Error || r.kind !== "cidr" ? [] : [blockOf(r)];
  });
  const isOpened = (r: Range) => opened.some((o) => within(r, o));
  let names = false;
  const rules: unknown[] = egress.allow.flatMap((entry): unknown[] => {
    const parsed = parseEgressEntry(entry);
    if (parsed instanceof Error) throw new ValidationError(parsed.message, { entry });
    if (parsed.kind !== "cidr") {
      // NetworkPolicy cannot match a name: the shared egress proxy decides on names, and the pod
      // may reach only that proxy for them.
      if (!proxy) {
        throw new ValidationError(
          `egress allow-list entry "${entry}" is a host name, and this installation has no egress proxy (KEEL_SANDBOX_EGRESS_PROXY; k8s/base/egress-proxy.yaml): Kubernetes NetworkPolicy cannot match names. List CIDRs instead (e.g. 140.82.112.0/20:443), or ask the operator to run the proxy`,
          { entry },
        );
      }
      names = true;
      return [];
    }
    const rule = { ...blockOf(parsed), ...(parsed.port ? { port: parsed.port } : {}) };
    const inside = INTERNAL.find((r) => within(rule, r));
    if (inside && !isOpened(rule)) {
      throw new ValidationError(
        `egress allow-list entry "${entry}" is an internal address (${inside.what}): sandboxes reach internal addresses only where the operator opened them (KEEL_SANDBOX_EGRESS_INTERNAL)`,
        { entry },
      );
    }
    // Strictly inside the rule and not opened; a range inside another left-out one is not listed.
    const carved = INTERNAL.filter((r) => r.prefix > rule.prefix && within(r, rule) && !isOpened(r));
    const except = [...new Set(carved.filter((c) => !carved.some((o) => o.text !== c.text && within(c, o))).map((c) => c.text))];
    const ports = rule.port ? { ports: [{ protocol: "TCP", port: rule.port }] } : {};
    // An opened range inside a cut-out one (10.244.0.0/16 inside 10.0.0.0/8) is allowed again by
    // a rule of its own (NetworkPolicy rules add up), as the local driver lets it through.
    const reopened = opened.filter((o) => within(o, rule) && carved.some((c) => within(o, c)));
    return [
      { to: [{ ipBlock: { cidr: rule.text, ...(except.length ? { except } : {}) } }], ...ports },
      ...reopened.map((o) => ({ to: [{ ipBlock: { cidr: o.text } }], ...ports })),
    ];
  });
  if (names && proxy) {
    rules.push({
      to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": proxy.namespace } }, podSelector: { matchLabels: proxy.podLabels } }],
      ports: [{ protocol: "TCP", port: proxy.port }],
    });
  }
  return rules;
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
    { name: START_TOKEN_ENV, valueFrom: { secretKeyRef: { name: runtimeSecretName(name), key: START_TOKEN_KEY } } },
    // env + secretKeyRef rather than envFrom: agent-sandbox refuses claim env injection into a
    // container that uses envFrom (it could not tell which variables a claim may override).
    ...policy.secrets.map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: secretName(name), key, optional: true } } })),
    // Host names in the allow-list: tools reach them through the shared egress proxy, which
    // checks the template's signed grant (the URL's password). A tool that ignores the proxy
    // variables reaches nothing by name (fail closed, as on the local driver).
    ...(cfg.egressProxy
      ? [
          ...PROXY_URL_VARS.map((v) => ({ name: v, valueFrom: { secretKeyRef: { name: runtimeSecretName(name), key: EGRESS_PROXY_KEY } } })),
          { name: "NO_PROXY", value: NO_PROXY },
          { name: "no_proxy", value: NO_PROXY },
        ]
      : []),
  ];
  return {
    apiVersion: `${EXT_GROUP}/${API_VERSION}`,
    kind: "SandboxTemplate",
    metadata: { name, namespace, labels: teamLabels(teamId), annotations: { [ANNOTATIONS.configHash]: configHash } },
    spec: {
      // Claims carry no env: a session's token reaches its pod through the runtime (tokens.ts).
      envVarsInjectionPolicy: "Disallowed",
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
        egress: egressRules(policy.egress, cfg.egressInternalAllow, cfg.egressProxy),
      },
      podTemplate: {
        // The grant's digest: a changed allow-list changes the pod template, so agent-sandbox
        // replaces warm pods that started with the old grant in their environment.
        metadata: { labels: teamLabels(teamId), ...(cfg.egressProxy ? { annotations: { [ANNOTATIONS.egressGrant]: cfg.egressProxy.grantDigest } } : {}) },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(cfg.runtimeClassName ? { runtimeClassName: cfg.runtimeClassName } : {}),
          ...(cfg.priorityClassName ? { priorityClassName: cfg.priorityClassName } : {}),
          ...(cfg.nodeSelector && Object.keys(cfg.nodeSelector).length ? { nodeSelector: cfg.nodeSelector } : {}),
          ...(cfg.tolerations?.length ? { tolerations: cfg.tolerations } : {}),
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
              // Every resource the team's ResourceQuota counts is stated: a pod without one is refused.
              resources: {
                requests: { cpu: "100m", memory: `${Math.min(policy.resources.memoryMb, 256)}Mi`, "ephemeral-storage": "256Mi" },
                limits: { cpu: cfg.cpu, memory, "ephemeral-storage": `${ephemeralLimitMb(policy)}Mi` },
              },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
              volumeMounts: [
                { name: "workspace", mountPath: "/workspace" },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
          // "workspace" comes from volumeClaimTemplates below: agent-sandbox adds the volume.
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: `${tmpMb(policy)}Mi` } }],
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
    },
  };
}
