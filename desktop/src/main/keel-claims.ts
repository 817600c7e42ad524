// What the desktop knows about claims Keel owns, from the labels Keel's Kubernetes driver puts on
// them (core/src/sandbox/k8s/names.ts LABELS; objects.ts claimObject): a claim labelled
// managed-by=keel with a team and a session is a session's sandbox. The app does not suspend or
// delete those while they are in use (Keel's driver and reaper act on them; a claim deleted under
// a running session breaks its run): the operator is told to end the session in Keel instead.
// Claims the app itself creates in a Keel team namespace carry Keel's labels with a session id of
// the form desktop-<hex> (no Keel session has that id), so Keel's reaper lists them and releases
// them as orphans at its next pass, giving the warm pool's sandbox back; every claim the app
// creates also carries a TTL (spec.lifecycle.shutdownTime: the controller deletes it then).
import { ANNOTATIONS, LABELS, MANAGER, type K8sObject } from "@keel/core/k8s";
import { KubeError } from "./kube.ts";

export const DESKTOP_SESSION_PREFIX = "desktop-";
export const CREATED_BY = { "app.kubernetes.io/created-by": "keel-desktop" } as const;

export type KeelOwnership = { team: string | null; session: string | null; managedByKeel: boolean; createdByDesktop: boolean };

export function ownership(o: K8sObject): KeelOwnership {
  const l = o.metadata.labels ?? {};
  const session = l[LABELS.session] ?? null;
  const createdByDesktop = l["app.kubernetes.io/created-by"] === "keel-desktop" || (session?.startsWith(DESKTOP_SESSION_PREFIX) ?? false);
  return {
    team: l[LABELS.team] ?? null,
    session,
    managedByKeel: l[LABELS.managedBy] === MANAGER && session !== null && !createdByDesktop,
    createdByDesktop,
  };
}

/** Throws `conflict` for a claim Keel manages for a session that is still using it (not terminated or failed). */
export function refuseKeelManaged(claim: K8sObject, state: string, action: "delete" | "suspend"): void {
  const o = ownership(claim);
  if (!o.managedByKeel || state === "terminated" || state === "failed") return;
  throw new KubeError(
    "conflict",
    `SandboxClaim ${claim.metadata.namespace}/${claim.metadata.name} is Keel's sandbox for session ${o.session} of team ${o.team}: ` +
      `${action === "delete" ? "deleting" : "suspending"} it here would break that session's run. Cancel or archive the session in Keel (Keel suspends idle sandboxes and releases them itself)`,
    409,
  );
}

/** Labels, annotations and lifecycle for a claim the app creates; in a Keel team namespace (its labels name the team) Keel's labels too. */
export function desktopClaimMeta(o: { namespaceLabels: Record<string, string>; suffix: string; ttlMs: number; now: number }) {
  const team = o.namespaceLabels[LABELS.managedBy] === MANAGER ? (o.namespaceLabels[LABELS.team] ?? null) : null;
  const session = `${DESKTOP_SESSION_PREFIX}${o.suffix}`;
  return {
    team,
    // Keel's driver names a session's claim s-<session>, and releases it by that name.
    name: team ? `s-${session}` : null,
    labels: { ...CREATED_BY, ...(team ? { [LABELS.managedBy]: MANAGER, [LABELS.team]: team, [LABELS.session]: session } : {}) },
    annotations: { [ANNOTATIONS.ttlMs]: String(o.ttlMs) },
    lifecycle: { shutdownTime: new Date(o.now + o.ttlMs).toISOString().replace(/\.\d{3}Z$/, "Z"), shutdownPolicy: "Delete" },
  };
}
