// agent-sandbox conditions → Keel's sandbox states (core/src/sandbox/driver.ts). Reasons are the
// v1.0.1 controller's (unchanged since v0.5.6: extensions/controllers/sandboxclaim_controller.go, controllers/
// sandbox_controller.go); an unknown reason counts as still provisioning, so a newer controller's
// reason cannot fail a sandbox that would have become ready.
import type { SandboxState } from "../driver.js";
import type { K8sObject } from "./objects.js";

type Condition = { type: string; status: string; reason?: string; message?: string };
const cond = (o: K8sObject | null, type: string): Condition | undefined => (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

/** The claim cannot become Ready without someone changing it: recreate (next acquire) or fix config. */
const FAILED_REASONS = new Set(["EnvVarsInjectionRejected", "VolumeClaimTemplatesError", "InvalidMetadata", "SandboxMissing"]);
/** The lifecycle ended it (shutdownTime passed, or the Sandbox expired). */
const ENDED_REASONS = new Set(["ClaimExpired", "SandboxExpired"]);

export function sandboxSuspended(sandbox: K8sObject): boolean {
  return sandbox.spec?.operatingMode === "Suspended" && cond(sandbox, "Suspended")?.status === "True";
}

export function claimState(claim: K8sObject, sandbox: K8sObject | null = null): SandboxState {
  if (claim.metadata.deletionTimestamp) return "terminated";
  if (sandbox?.spec?.operatingMode === "Suspended") return "suspended";
  const ready = cond(claim, "Ready");
  if (!ready) return "requested";
  if (ready.status === "True") return "ready";
  if (ENDED_REASONS.has(ready.reason ?? "")) return "terminated";
  if (FAILED_REASONS.has(ready.reason ?? "")) return "failed";
  // SandboxNotReady, SandboxCreatePending, WarmPoolNotFound / TemplateNotFound (the controller
  // retries both), AdoptionConflict, Suspended (resuming), …
  return "provisioning";
}

export type QuotaRefusal = {
  /** What the API server refused to create: "pods" or "persistentvolumeclaims". */
  resource: string;
  quota: string;
  requested: Record<string, string>;
  used: Record<string, string>;
  limited: Record<string, string>;
};

/**
 * The ResourceQuota admission's refusal, as the agent-sandbox controller reports a pod or PVC
 * create it could not make: the claim's Ready condition is False, reason ReconcilerError, message
 * `Error seen: pods "s-x" is forbidden: exceeded quota: keel-sandboxes, requested: pods=1, used:
 * pods=2, limited: pods=2` (v1.0.1: controllers/sandbox_controller.go computeReadyCondition,
 * forwarded by the claim controller). The controller keeps retrying, so the claim stays
 * "provisioning" and would start whenever the quota frees; null when it is not this refusal.
 */
export function quotaRefusal(claim: K8sObject): QuotaRefusal | null {
  const ready = cond(claim, "Ready");
  if (!ready || ready.status === "True" || !ready.message) return null;
  const m = /(\w+) "[^"]*" is forbidden: exceeded quota: ([^,\s]+), requested: (\S+), used: (\S+), limited: (\S+)/.exec(ready.message);
  if (!m) return null;
  const pairs = (s: string) => Object.fromEntries(s.split(",").map((kv) => kv.split("=") as [string, string]));
  return { resource: m[1]!, quota: m[2]!, requested: pairs(m[3]!), used: pairs(m[4]!), limited: pairs(m[5]!) };
}
