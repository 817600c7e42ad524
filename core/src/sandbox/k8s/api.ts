// The few Kubernetes API calls the driver makes, with the failure modes turned into errors an
// operator can act on: a 403 names the verb, resource and namespace and the ClusterRole to grant;
// a missing agent-sandbox API group says what to install; a connection error or 5xx/429 is
// retried with backoff for `retryMs` (an API server restart, a control-plane upgrade) before it
// becomes SandboxUnavailableError. Waits use a watch, re-listing when the watch drops.
import { ApiException, ApisApi, KubeConfig, KubernetesObjectApi, PatchStrategy, Watch } from "@kubernetes/client-node";
import type { Logger } from "../../logger.js";
import { SandboxError, SandboxUnavailableError } from "../errors.js";
import { AGENT_SANDBOX_VERSION, API_VERSION, CORE_GROUP, EXT_GROUP, MANAGER } from "./names.js";
import type { K8sObject } from "./objects.js";

export class KubernetesForbiddenError extends SandboxError {
  constructor(message: string, details: Record<string, unknown>, options?: { cause?: unknown }) {
    super("sandbox_k8s_forbidden", 503, message, details, options);
  }
}
export class AgentSandboxMissingError extends SandboxError {
  constructor(message: string) {
    super("sandbox_k8s_not_installed", 503, message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Ref = { apiVersion: string; kind: string; namespace?: string; name: string };
const PLURALS: Record<string, string> = { SandboxClaim: "sandboxclaims", Sandbox: "sandboxes", SandboxTemplate: "sandboxtemplates", SandboxWarmPool: "sandboxwarmpools", Pod: "pods" };

export class KubeApi {
  // Loosely typed: our K8sObject is plain JSON (custom resources), not the generated models.
  private readonly objects: { [K in "read" | "list" | "create" | "patch" | "delete"]: (...args: any[]) => Promise<any> };
  private apisChecked = false;
  /** API calls made, by verb: the driver's cost per session (bench and tests read it). */
  readonly calls: Record<string, number> = {};

  constructor(private readonly kc: KubeConfig, private readonly opts: { retryMs: number; logger: Logger }) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
  }

  /** Once per driver: both agent-sandbox API groups must be served at v1beta1. */
  async ensureAgentSandbox(): Promise<void> {
    if (this.apisChecked) return;
    const groups = await this.call("discover", "apigroups", undefined, () => this.kc.makeApiClient(ApisApi).getAPIVersions());
    const served = new Set(groups.groups.flatMap((g) => g.versions.map((v) => `${g.name}/${v.version}`)));
    const missing = [EXT_GROUP, CORE_GROUP].map((g) => `${g}/${API_VERSION}`).filter((gv) => !served.has(gv));
    if (missing.length) {
      throw new AgentSandboxMissingError(
        `agent-sandbox is not installed in this cluster: the API server does not serve ${missing.join(" and ")}. ` +
          `Install agent-sandbox ${AGENT_SANDBOX_VERSION} with its extensions (kind/up.sh shows how), then retry`,
      );
    }
    this.apisChecked = true;
  }

  get<T extends K8sObject>(ref: Ref): Promise<T | null> {
    return this.call("get", ref.kind, ref.namespace, () => this.objects.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } } as never)).catch((err) => {
      if (err instanceof ApiException && err.code === 404) return null;
      throw err;
    });
  }

  async list<T extends K8sObject>(apiVersion: string, kind: string, labelSelector: string, namespace?: string): Promise<T[]> {
    const res = await this.call("list", kind, namespace, () => this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector));
    return res.items;
  }

  create<T extends K8sObject>(obj: T): Promise<T> {
    return this.call("create", obj.kind, obj.metadata.namespace, () => this.objects.create(obj, undefined, undefined, MANAGER));
  }

  /** Server-side apply: create or update, owning exactly the fields given. */
  apply<T extends K8sObject>(obj: T): Promise<T> {
    return this.call("patch", obj.kind, obj.metadata.namespace, () => this.objects.patch(obj, undefined, undefined, MANAGER, true, PatchStrategy.ServerSideApply));
  }

  mergePatch(ref: Ref, patch: Record<string, unknown>): Promise<K8sObject> {
    const body = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace }, ...patch };
    return this.call("patch", ref.kind, ref.namespace, () => this.objects.patch(body as K8sObject, undefined, undefined, MANAGER, undefined, PatchStrategy.MergePatch));
  }

  /** Delete; `uid` guards against deleting a newer object of the same name. false: already gone. */
  async delete(ref: Ref, opts: { uid?: string; propagation?: "Background" | "Foreground" } = {}): Promise<boolean> {
    const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } };
    const body = { propagationPolicy: opts.propagation ?? "Background", ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}) };
    return this.call("delete", ref.kind, ref.namespace, () => this.objects.delete(spec, undefined, undefined, undefined, undefined, body.propagationPolicy, body)).then(
      () => true,
      (err) => {
        // 404: gone; 409: the uid precondition failed (a newer object has that name): not ours.
        if (err instanceof ApiException && (err.code === 404 || err.code === 409)) return false;
        throw err;
      },
    );
  }

  /**
   * Resolves with check(obj) once it returns a value (obj is null when the object does not
   * exist). Watches the one object; when the watch ends or errors (API server restart, idle
   * timeout, dropped connection) it re-reads and watches again, until timeoutMs.
   */
  async waitFor<R>(ref: Ref, check: (obj: K8sObject | null) => R | undefined, timeoutMs: number, what: string): Promise<R> {
    const deadline = Date.now() + timeoutMs;
    let last: K8sObject | null = null;
    for (let attempt = 0; ; attempt++) {
      last = await this.get(ref);
      const r = check(last);
      if (r !== undefined) return r;
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const path = `/apis/${ref.apiVersion}/namespaces/${ref.namespace}/${PLURALS[ref.kind]}`;
      const found = await new Promise<{ value: R } | undefined>((resolve) => {
        let settled = false;
        let abort: AbortController | undefined;
        const finish = (v: { value: R } | undefined) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          abort?.abort();
          resolve(v);
        };
        // Re-read at least every 10 s: a watch can stall without an error.
        const timer = setTimeout(() => finish(undefined), Math.min(remaining, 10_000));
        this.count("watch");
        new Watch(this.kc)
          .watch(path, { fieldSelector: `metadata.name=${ref.name}`, ...(last?.metadata.resourceVersion ? { resourceVersion: last.metadata.resourceVersion } : {}) },
            (phase, obj: K8sObject) => {
              last = phase === "DELETED" ? null : obj;
              const v = check(last);
              if (v !== undefined) finish({ value: v });
            },
            () => finish(undefined))
          .then((a) => { abort = a; if (settled) a.abort(); }, () => finish(undefined));
      });
      if (found) return found.value;
      if (attempt > 0) await sleep(Math.min(1_000, Math.max(0, deadline - Date.now())));
    }
    const cond = (last?.status?.conditions as { type: string; reason?: string; message?: string }[] | undefined)?.find((c) => c.type === "Ready");
    throw new SandboxUnavailableError(`timed out after ${timeoutMs} ms waiting for ${what}${cond ? ` (Ready: ${cond.reason ?? "?"}${cond.message ? `: ${cond.message}` : ""})` : ""}`, { kind: ref.kind, name: ref.name, namespace: ref.namespace });
  }

  private count(verb: string) {
    this.calls[verb] = (this.calls[verb] ?? 0) + 1;
  }

  private async call<T>(verb: string, kind: string, namespace: string | undefined, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.opts.retryMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      this.count(verb);
      try {
        return await fn();
      } catch (err) {
        const code = err instanceof ApiException ? err.code : undefined;
        if (code === 401 || code === 403) {
          const resource = PLURALS[kind] ?? kind.toLowerCase();
          throw new KubernetesForbiddenError(
            `the Kubernetes API refused to ${verb} ${resource}${namespace ? ` in namespace ${namespace}` : ""} (${code}${code === 401 ? ": the credentials are not accepted" : ""}): ` +
              `bind the ServiceAccount this process runs as to the ClusterRole keel-platform (k8s/base/rbac.yaml)`,
            { verb, resource, namespace, status: code, reason: apiMessage(err) },
            { cause: err },
          );
        }
        const transient = code === undefined || code === 429 || code >= 500;
        if (!transient || Date.now() + delay > deadline) {
          if (transient) throw new SandboxUnavailableError(`the Kubernetes API server is unreachable (${verb} ${kind}): ${apiMessage(err)}`, { verb, kind }, { cause: err });
          throw err;
        }
        this.opts.logger.warn({ verb, kind, namespace, status: code, err: apiMessage(err) }, "kubernetes api call failed; retrying");
        await sleep(delay);
      }
    }
  }
}

export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    try {
      const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
      if (body?.message) return String(body.message);
    } catch { /* not JSON */ }
    return `HTTP ${err.code}`;
  }
  return (err as Error)?.message ?? String(err);
}
