// Suspend and resume a sandbox, and list its events. Suspend is agent-sandbox's operatingMode,
// as Keel's driver does it (core/src/sandbox/k8s/driver.ts): the controller deletes the pod and
// keeps the Sandbox; Running brings a new pod. The wait reuses core's watch-based KubeApi.waitFor
// and its `sandboxSuspended` rule, so the desktop and the driver agree on "suspended".
// The PATCH goes through kube.ts for the desktop's operator messages (403 names user and context).
import type { KubeConfig } from "@kubernetes/client-node";
import { silentLogger } from "@keel/core/logger";
import { KeelError } from "@keel/core/errors";
import { API_VERSION, claimState, CORE_GROUP, type K8sObject, KubeApi, sandboxSuspended } from "@keel/core/k8s";
import type { SandboxEvent, SandboxRow } from "../shared/contract.ts";
import { expectStatus, KubeError, kubeRequest } from "./kube.ts";
import { resourcePath, toRow } from "./sandboxes.ts";
import { refuseKeelManaged } from "./keel-claims.ts";

export type SandboxRef = { namespace: string; kind: "SandboxClaim" | "Sandbox"; name: string };
type Condition = { type: string; status: string; reason?: string; message?: string };
const POD_NAME_ANNOTATION = "agents.x-k8s.io/pod-name";

async function getObject(kc: KubeConfig, kind: SandboxRef["kind"], namespace: string, name: string): Promise<K8sObject> {
  const res = await kubeRequest<K8sObject>(kc, "GET", resourcePath(kind, namespace, name));
  if (res.status === 404)
    throw new KubeError("not_found", `there is no ${kind} "${name}" in namespace ${namespace}: it may have been deleted; refresh the list`, 404);
  return expectStatus(kc, res, `read ${kind} ${namespace}/${name}`);
}

/** The claim (if the ref is one) and the name of its Sandbox. */
async function resolve(kc: KubeConfig, ref: SandboxRef): Promise<{ claim: K8sObject | null; sandbox: string | null }> {
  if (ref.kind === "Sandbox") return { claim: null, sandbox: ref.name };
  const claim = await getObject(kc, "SandboxClaim", ref.namespace, ref.name);
  return { claim, sandbox: (claim.status?.sandbox?.name as string | undefined) ?? null };
}

async function setOperatingMode(kc: KubeConfig, ref: SandboxRef, mode: "Suspended" | "Running", timeoutMs: number): Promise<SandboxRow> {
  const { claim, sandbox } = await resolve(kc, ref);
  if (claim && mode === "Suspended") refuseKeelManaged(claim, claimState(claim), "suspend");
  if (!sandbox) {
    throw new KubeError(
      "conflict",
      `SandboxClaim ${ref.namespace}/${ref.name} has no Sandbox yet (it is still being provisioned): wait until it is ready, then ${mode === "Suspended" ? "suspend" : "resume"} it`,
      409,
    );
  }
  const verb = mode === "Suspended" ? "suspend" : "resume";
  const patched = await kubeRequest<K8sObject>(kc, "PATCH", resourcePath("Sandbox", ref.namespace, sandbox), {
    body: { spec: { operatingMode: mode } },
    contentType: "application/merge-patch+json",
  });
  if (patched.status === 404)
    throw new KubeError("not_found", `there is no Sandbox "${sandbox}" in namespace ${ref.namespace}: it may have been deleted; refresh the list`, 404);
  expectStatus(kc, patched, `${verb} Sandbox ${ref.namespace}/${sandbox} (patch sandboxes)`);

  const api = new KubeApi(kc, { retryMs: 2_000, logger: silentLogger });
  const sandboxRef = { apiVersion: `${CORE_GROUP}/${API_VERSION}`, kind: "Sandbox", namespace: ref.namespace, name: sandbox };
  const done =
    mode === "Suspended"
      ? (s: K8sObject) => sandboxSuspended(s)
      : (s: K8sObject) =>
          s.spec?.operatingMode === "Running" && (s.status?.conditions as Condition[] | undefined)?.some((c) => c.type === "Ready" && c.status === "True");
  let final: K8sObject | "deleted";
  try {
    // "deleted" comes back as a value, not a throw, so core's errors are the only ones caught below.
    final = await api.waitFor(sandboxRef, (s) => (!s ? "deleted" : done(s) ? s : undefined), timeoutMs, `sandbox ${ref.namespace}/${sandbox} to ${verb}`);
  } catch (err) {
    // core's errors (a timeout, the API server gone for longer than its retries) → the desktop's.
    if (err instanceof KeelError)
      throw new KubeError(err.code === "sandbox_k8s_forbidden" ? "forbidden" : "kube_api_error", err.message, err.status, { cause: err });
    throw err;
  }
  if (final === "deleted")
    throw new KubeError("not_found", `Sandbox ${ref.namespace}/${sandbox} was deleted while it was ${mode === "Suspended" ? "suspending" : "resuming"}`, 404);
  if (!claim) return toRow("Sandbox", final);
  return toRow("SandboxClaim", await getObject(kc, "SandboxClaim", ref.namespace, ref.name), Date.now(), final);
}

/** operatingMode Suspended; resolves once the controller reports the Sandbox suspended (its pod deleted). */
export function suspendSandbox(kc: KubeConfig, ref: SandboxRef, opts: { timeoutMs?: number } = {}): Promise<SandboxRow> {
  return setOperatingMode(kc, ref, "Suspended", opts.timeoutMs ?? 60_000);
}

/** operatingMode Running; resolves once the Sandbox is Ready again (a new pod). */
export function resumeSandbox(kc: KubeConfig, ref: SandboxRef, opts: { timeoutMs?: number } = {}): Promise<SandboxRow> {
  return setOperatingMode(kc, ref, "Running", opts.timeoutMs ?? 120_000);
}

/**
 * core/v1 Events about the claim, its Sandbox and the Sandbox's pod (named by the controller's
 * pod-name annotation), oldest first. One field-selected list per distinct name: a namespace's
 * whole event list can be large.
 */
export async function sandboxEvents(kc: KubeConfig, ref: SandboxRef): Promise<SandboxEvent[]> {
  const { sandbox } = await resolve(kc, ref);
  const involved: { kind: string; name: string }[] = ref.kind === "SandboxClaim" ? [{ kind: "SandboxClaim", name: ref.name }] : [];
  if (sandbox) {
    involved.push({ kind: "Sandbox", name: sandbox });
    const res = await kubeRequest<K8sObject>(kc, "GET", resourcePath("Sandbox", ref.namespace, sandbox));
    const pod = res.status === 200 ? (res.body.metadata.annotations?.[POD_NAME_ANNOTATION] ?? sandbox) : sandbox;
    if (res.status !== 404) expectStatus(kc, res, `read Sandbox ${ref.namespace}/${sandbox}`);
    involved.push({ kind: "Pod", name: pod });
  }
  const names = [...new Set(involved.map((i) => i.name))];
  const lists = await Promise.all(
    names.map(async (name) => {
      const q = new URLSearchParams({ fieldSelector: `involvedObject.name=${name}` });
      const res = await kubeRequest<{ items: any[] }>(kc, "GET", `/api/v1/namespaces/${ref.namespace}/events?${q}`);
      return expectStatus(kc, res, `list events in namespace ${ref.namespace}`).items;
    }),
  );
  const wanted = new Set(involved.map((i) => `${i.kind}/${i.name}`));
  return lists
    .flat()
    .filter((e) => wanted.has(`${e.involvedObject?.kind}/${e.involvedObject?.name}`))
    .map((e): SandboxEvent => ({
      kind: e.involvedObject.kind,
      name: e.involvedObject.name,
      type: e.type ?? "Normal",
      reason: e.reason ?? null,
      message: e.message ?? null,
      count: e.count ?? e.series?.count ?? 1,
      firstSeen: e.firstTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? null,
      lastSeen: e.lastTimestamp ?? e.series?.lastObservedTime ?? e.eventTime ?? e.metadata?.creationTimestamp ?? null,
      source: e.source?.component || e.reportingComponent || null,
    }))
    .sort((a, b) => (a.lastSeen ?? "").localeCompare(b.lastSeen ?? ""));
}
