// agent-sandbox objects for the desktop's sandboxes view: list the four kinds across namespaces
// reduced to status / reason / age, create a claim from a template, delete a claim, scale a pool.
// States of claims come from core's claimState so the desktop and the Keel driver agree on what
// "ready" or "failed" means.
import { randomBytes } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { API_VERSION, claimState, CORE_GROUP, EXT_GROUP, type K8sObject } from "@keel/core/k8s";
import type { SandboxKind, SandboxRow } from "../shared/contract.ts";
import { expectStatus, KubeError, kubeRequest } from "./kube.ts";
import { desktopClaimMeta, ownership, refuseKeelManaged } from "./keel-claims.ts";

/** A claim the app creates lives this long unless the operator picks another TTL. */
export const DEFAULT_CLAIM_TTL_MS = 60 * 60_000;

export const KINDS: Record<SandboxKind, { group: string; plural: string }> = {
  SandboxClaim: { group: EXT_GROUP, plural: "sandboxclaims" },
  Sandbox: { group: CORE_GROUP, plural: "sandboxes" },
  SandboxTemplate: { group: EXT_GROUP, plural: "sandboxtemplates" },
  SandboxWarmPool: { group: EXT_GROUP, plural: "sandboxwarmpools" },
};

export const resourcePath = (kind: SandboxKind, namespace?: string, name?: string) => {
  const { group, plural } = KINDS[kind];
  return `/apis/${group}/${API_VERSION}${namespace ? `/namespaces/${namespace}` : ""}/${plural}${name ? `/${name}` : ""}`;
};

type Condition = { type: string; status: string; reason?: string; message?: string };
const readyCondition = (o: K8sObject): Condition | undefined => (o.status?.conditions as Condition[] | undefined)?.find((c) => c.type === "Ready");

/** `sandbox`: a claim's Sandbox, when known, so a suspended one shows as suspended. */
export function toRow(kind: SandboxKind, o: K8sObject, now = Date.now(), sandbox: K8sObject | null = null): SandboxRow {
  const created = o.metadata.creationTimestamp ? new Date(o.metadata.creationTimestamp) : null;
  const ready = readyCondition(o);
  const row: SandboxRow = {
    kind,
    namespace: o.metadata.namespace ?? "",
    name: o.metadata.name,
    uid: o.metadata.uid ?? "",
    status: "unknown",
    reason: ready?.reason ?? null,
    message: ready?.message ?? null,
    createdAt: created?.toISOString() ?? null,
    ageSeconds: created ? Math.max(0, Math.floor((now - created.getTime()) / 1000)) : null,
  };
  switch (kind) {
    case "SandboxClaim": {
      const { team, session, managedByKeel } = ownership(o);
      return {
        ...row,
        status: claimState(o, sandbox),
        warmPool: o.spec?.warmPoolRef?.name ?? null,
        sandbox: o.status?.sandbox?.name ?? null,
        team,
        session,
        managedByKeel,
        expiresAt: (o.spec?.lifecycle?.shutdownTime as string | undefined) ?? null,
      };
    }
    case "Sandbox":
      return {
        ...row,
        status: o.metadata.deletionTimestamp
          ? "terminating"
          : o.spec?.operatingMode === "Suspended"
            ? "suspended"
            : ready?.status === "True"
              ? "ready"
              : "not-ready",
      };
    case "SandboxTemplate":
      return { ...row, status: "available" };
    case "SandboxWarmPool": {
      const replicas = Number(o.spec?.replicas ?? 0);
      const readyReplicas = Number(o.status?.readyReplicas ?? 0);
      return { ...row, status: readyReplicas === replicas ? "ready" : "scaling", template: o.spec?.sandboxTemplateRef?.name ?? null, replicas, readyReplicas };
    }
  }
}

/** One kind's objects in one namespace, or across all namespaces when `namespace` is omitted. */
async function listObjects(kc: KubeConfig, kind: SandboxKind, namespace?: string): Promise<K8sObject[]> {
  const res = await kubeRequest<{ items: K8sObject[] }>(kc, "GET", resourcePath(kind, namespace));
  // The list response leaves apiVersion/kind off its items.
  return expectStatus(kc, res, `list ${KINDS[kind].plural}${namespace ? ` in namespace ${namespace}` : " in all namespaces"}`).items;
}

export async function listKind(kc: KubeConfig, kind: SandboxKind, namespace?: string): Promise<SandboxRow[]> {
  const now = Date.now();
  return (await listObjects(kc, kind, namespace)).map((o) => toRow(kind, o, now));
}

/** All four kinds, sorted by namespace, kind, name. Claims are shown with their Sandbox's state (suspended). */
export async function listSandboxes(kc: KubeConfig, opts: { namespace?: string } = {}): Promise<SandboxRow[]> {
  const kinds = Object.keys(KINDS) as SandboxKind[];
  const lists = await Promise.all(kinds.map((k) => listObjects(kc, k, opts.namespace)));
  const byKind = new Map(kinds.map((k, i) => [k, lists[i]!]));
  const sandboxes = new Map((byKind.get("Sandbox") ?? []).map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  const now = Date.now();
  const rows = kinds.flatMap((kind) =>
    byKind
      .get(kind)!
      .map((o) => toRow(kind, o, now, kind === "SandboxClaim" ? (sandboxes.get(`${o.metadata.namespace}/${o.status?.sandbox?.name}`) ?? null) : null)),
  );
  return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}

/**
 * A claim for `template`. agent-sandbox v1beta1 claims name a warm pool, not a template, so this
 * uses the namespace's warm pool for that template (Keel names it after the template); none →
 * an error saying to create one, since inventing a pool would start pods nobody asked for.
 */
export async function createClaim(
  kc: KubeConfig,
  input: { namespace: string; template: string; name?: string | undefined; ttlMinutes?: number | undefined },
): Promise<SandboxRow> {
  const { namespace, template } = input;
  const tpl = await kubeRequest(kc, "GET", resourcePath("SandboxTemplate", namespace, template));
  if (tpl.status === 404)
    throw new KubeError("not_found", `there is no SandboxTemplate "${template}" in namespace ${namespace}: pick one of the templates listed there`, 404);
  expectStatus(kc, tpl, `read SandboxTemplate ${namespace}/${template}`);
  const pools = (await listKind(kc, "SandboxWarmPool", namespace)).filter((p) => p.template === template);
  const pool = pools.find((p) => p.name === template) ?? pools[0];
  if (!pool) {
    throw new KubeError(
      "not_found",
      `no SandboxWarmPool in namespace ${namespace} uses template "${template}", and agent-sandbox claims are made from a warm pool: create one (replicas: 0 is fine) with sandboxTemplateRef.name: ${template}`,
      404,
    );
  }
  // A Keel team namespace (labelled by Keel with its team): the claim carries Keel's labels so its reaper sees it.
  const nsRes = await kubeRequest<K8sObject>(kc, "GET", `/api/v1/namespaces/${namespace}`);
  const namespaceLabels = nsRes.status === 200 ? (nsRes.body.metadata.labels ?? {}) : {};
  const suffix = randomBytes(3).toString("hex");
  const meta = desktopClaimMeta({ namespaceLabels, suffix, ttlMs: input.ttlMinutes ? input.ttlMinutes * 60_000 : DEFAULT_CLAIM_TTL_MS, now: Date.now() });
  if (meta.team && input.name) {
    throw new KubeError(
      "invalid_input",
      `namespace ${namespace} is Keel's namespace for team ${meta.team}: a claim made here is named s-desktop-<id> so Keel's reaper can release it; leave the name empty`,
      422,
    );
  }
  const name = meta.name ?? input.name ?? `${template.slice(0, 50)}-${suffix}`;
  const claim: K8sObject = {
    apiVersion: `${EXT_GROUP}/${API_VERSION}`,
    kind: "SandboxClaim",
    metadata: { name, namespace, labels: meta.labels, annotations: meta.annotations },
    spec: { warmPoolRef: { name: pool.name }, lifecycle: meta.lifecycle },
  };
  const res = await kubeRequest<K8sObject>(kc, "POST", resourcePath("SandboxClaim", namespace), { body: claim });
  return toRow("SandboxClaim", expectStatus(kc, res, `create SandboxClaim ${namespace}/${name}`));
}

/**
 * Deletes a claim; its Sandbox and Pod follow through owner references. false: it was already gone.
 * A claim Keel manages for a session in use is refused (keel-claims.ts); the delete is made with
 * the read claim's uid as a precondition, so a claim recreated meanwhile is not deleted unseen.
 */
export async function deleteClaim(kc: KubeConfig, input: { namespace: string; name: string }): Promise<{ deleted: boolean }> {
  const got = await kubeRequest<K8sObject>(kc, "GET", resourcePath("SandboxClaim", input.namespace, input.name));
  if (got.status === 404) return { deleted: false };
  const claim = expectStatus(kc, got, `read SandboxClaim ${input.namespace}/${input.name}`);
  refuseKeelManaged(claim, claimState(claim), "delete");
  const res = await kubeRequest(kc, "DELETE", resourcePath("SandboxClaim", input.namespace, input.name), {
    body: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", preconditions: { uid: claim.metadata.uid } },
  });
  if (res.status === 404) return { deleted: false };
  expectStatus(kc, res, `delete SandboxClaim ${input.namespace}/${input.name}`, [200, 202]);
  return { deleted: true };
}

export async function scaleWarmPool(kc: KubeConfig, input: { namespace: string; name: string; replicas: number }): Promise<SandboxRow> {
  const res = await kubeRequest<K8sObject>(kc, "PATCH", resourcePath("SandboxWarmPool", input.namespace, input.name), {
    body: { spec: { replicas: input.replicas } },
    contentType: "application/merge-patch+json",
  });
  return toRow("SandboxWarmPool", expectStatus(kc, res, `scale SandboxWarmPool ${input.namespace}/${input.name}`));
}
