// Names and labels of everything the Kubernetes driver creates. Kubernetes names are DNS labels
// (lowercase, ≤ 63), so ids are validated here and refused with a clear message rather than
// mangled: a lossy mapping (lowercasing, truncating) could give two sessions one claim.
import { SandboxError } from "../errors.js";

export const EXT_GROUP = "extensions.agents.x-k8s.io";
export const CORE_GROUP = "agents.x-k8s.io";
export const API_VERSION = "v1beta1";
/** The agent-sandbox release these objects are written for (kind/up.sh installs the same). */
export const AGENT_SANDBOX_VERSION = "v1.0.1";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  team: "keel.dev/team",
  session: "keel.dev/session",
} as const;
export const ANNOTATIONS = {
  configHash: "keel.dev/config-hash",
  ttlMs: "keel.dev/ttl-ms",
  idleTimeoutMs: "keel.dev/idle-timeout-ms",
  egressGrant: "keel.dev/egress-grant",
} as const;
export const MANAGER = "keel";
/** The Secret a template's pods read the team secrets it exposes from: one per template, so two
 *  templates of a team exposing different secrets do not overwrite each other's. */
export const secretName = (template: string) => `keel-sandbox-secrets-${template}`;
export const CONTAINER = "runtime";
/** The sandbox runtime's port in every sandbox pod; k8s/base/network.yaml (keel-sandboxes) opens it to the workers. */
export const RUNTIME_PORT = 8080;
/** The worker pods' labels (k8s/base/worker.yaml): a sandbox's ingress admits pods with these, in the workers' namespace. */
export const WORKER_POD_LABELS: Readonly<Record<string, string>> = { "app.kubernetes.io/name": "keel", "app.kubernetes.io/component": "worker" };
/** A working token in the pod spec: how pods of earlier releases got theirs (read, never written). */
/** The team namespace's ResourceQuota and LimitRange (both the operator's values, written by the driver). */
export const LIMITS_NAME = "keel-sandboxes";
/** The sandboxes' PriorityClass (k8s/base/priority.yaml); admission.yaml lets the platform set no other. */
export const SANDBOX_PRIORITY_CLASS = "keel-sandbox";
export const TOKEN_ENV = "KEEL_RUNTIME_TOKEN";
/** The template's start token (tokens.ts), from the Secret runtimeSecretName(template), key `start-token`. */
export const START_TOKEN_ENV = "KEEL_RUNTIME_START_TOKEN";
export const runtimeSecretName = (template: string) => `keel-runtime-${template}`;
export const START_TOKEN_KEY = "start-token";
/** In the same Secret, with host names in the allow-list: the egress proxy URL, the signed grant as its password. */
export const EGRESS_PROXY_KEY = "egress-proxy-url";

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export class SandboxNameError extends SandboxError {
  constructor(message: string, details: Record<string, unknown>) {
    super("sandbox_invalid_name", 422, message, details);
  }
}

function label(kind: string, value: string, max: number): string {
  if (value.length === 0 || value.length > max || !DNS_LABEL.test(value)) {
    throw new SandboxNameError(
      `${kind} "${value.slice(0, 80)}" cannot name a Kubernetes object: use 1–${max} lowercase letters, digits or '-', starting and ending with a letter or digit`,
      { [kind]: value.slice(0, 80) },
    );
  }
  return value;
}

/** The namespace prefix (configuration): a team id is appended, so it may end in '-' but must start a DNS label. */
export function validateNamespacePrefix(prefix: string): string {
  if (prefix.length > 40 || !/^[a-z0-9][a-z0-9-]*$/.test(prefix)) {
    throw new SandboxNameError(
      `namespacePrefix "${prefix.slice(0, 80)}" cannot start a Kubernetes namespace name: use 1–40 lowercase letters, digits or '-', starting with a letter or digit (default "keel-team-")`,
      { namespacePrefix: prefix.slice(0, 80) },
    );
  }
  return prefix;
}

export type SandboxNames = { namespace: string; claim: string; template: string; pool: string };

/** Validates the ids and returns the object names for one session's sandbox. */
export function sandboxNames(opts: { namespacePrefix: string; teamId: string; sessionId: string; template: string }): SandboxNames {
  const team = label("teamId", opts.teamId, 63 - opts.namespacePrefix.length);
  const session = label("sessionId", opts.sessionId, 61);
  const template = label("template", opts.template, 63);
  return { namespace: `${opts.namespacePrefix}${team}`, claim: `s-${session}`, template, pool: template };
}

export function teamNamespace(namespacePrefix: string, teamId: string): string {
  return `${namespacePrefix}${label("teamId", teamId, 63 - namespacePrefix.length)}`;
}

export function sessionSelector(teamId?: string, sessionId?: string): string {
  return [`${LABELS.managedBy}=${MANAGER}`, ...(teamId ? [`${LABELS.team}=${teamId}`] : []), ...(sessionId ? [`${LABELS.session}=${sessionId}`] : [])].join(
    ",",
  );
}
