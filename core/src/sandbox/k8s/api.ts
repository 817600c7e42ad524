// The few Kubernetes API calls the driver makes, with the failure modes turned into errors an
// operator can act on: a 403 names the verb, resource and namespace and the ClusterRole to grant;
// a missing agent-sandbox API group (at start, or uninstalled later) says what to install; a
// connection error or 5xx/429 is retried with backoff for `retryMs` (an API server restart, a
// control-plane upgrade) before it becomes SandboxUnavailableError; any other refusal (400, 409,
// 422: a bad object, an admission webhook) becomes KubernetesApiError with the server's message.
// Waits use a watch, re-reading and re-watching when the watch drops.
import { ApiException, KubeConfig, KubernetesObjectApi, PatchStrategy, Watch } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffMs } from "../../backoff.js";
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
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("sandbox_k8s_not_installed", 503, message, details);
  }
}
/** The API server answered and refused the request for a reason other than rights or load. */
export class KubernetesApiError extends SandboxError {
  constructor(message: string, details: Record<string, unknown>, options?: { cause?: unknown }) {
    super("sandbox_k8s_rejected", 502, message, details, options);
  }
}
/** Create found an object of that name already there (another worker, or a retried request whose first answer was lost). */
export class KubernetesConflictError extends SandboxError {
  constructor(message: string, details: Record<string, unknown>, options?: { cause?: unknown }) {
    super("sandbox_k8s_conflict", 409, message, details, options);
  }
}

type Ref = { apiVersion: string; kind: string; namespace?: string; name: string };
const PLURALS: Record<string, string> = {
  SandboxClaim: "sandboxclaims",
  Sandbox: "sandboxes",
  SandboxTemplate: "sandboxtemplates",
  SandboxWarmPool: "sandboxwarmpools",
  Pod: "pods",
};
const AGENT_SANDBOX_KINDS = new Set(["SandboxClaim", "Sandbox", "SandboxTemplate", "SandboxWarmPool"]);

export type KubeApiOptions = {
  retryMs: number;
  logger: Logger;
  /** Called before every request (retries included): a seam to replay a race exactly in tests. */
  beforeCall?: (verb: string, kind: string) => void | Promise<void>;
};

export class KubeApi {
  private objects: ObjectsClient;
  private apisChecked = false;
  /** API calls made, by verb: the driver's cost per session (bench and tests read it). */
  readonly calls: Record<string, number> = {};
  /** Watches open now, and watches that ended while their waiter still waited (dropped, timed out by the server). */
  readonly watches = { open: 0, dropped: 0 };

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: KubeApiOptions,
  ) {
    this.objects = objectsClient(kc);
  }

  /**
   * Once per driver, and again after an agent-sandbox resource went missing: both API groups must
   * be served at v1beta1 with every kind the driver uses (a half install, or extensions without
   * the core group, fails here and not at the first claim).
   */
  async ensureAgentSandbox(): Promise<void> {
    if (this.apisChecked) return;
    const missing: string[] = [];
    for (const [group, kinds] of [
      [EXT_GROUP, ["SandboxClaim", "SandboxTemplate", "SandboxWarmPool"]],
      [CORE_GROUP, ["Sandbox"]],
    ] as const) {
      const gv = `${group}/${API_VERSION}`;
      // GET /apis/<group>/<version> (client-node caches it for the requests that follow); 404: not served.
      const served = await this.call("discover", gv, undefined, () =>
        this.objects.resource(gv, kinds[0]).then(
          () => Promise.all(kinds.map(async (k) => ((await this.objects.resource(gv, k)) ? null : k))),
          (err: unknown) => (err instanceof ApiException && err.code === 404 ? undefined : Promise.reject(err)),
        ),
      );
      if (!served) missing.push(gv);
      else if (served.some((k) => k)) missing.push(`${gv} (${served.filter((k) => k).join(", ")})`);
    }
    if (missing.length) {
      throw new AgentSandboxMissingError(
        `agent-sandbox is not installed in this cluster: the API server does not serve ${missing.join(" and ")}. ` +
          `Install agent-sandbox ${AGENT_SANDBOX_VERSION} with its extensions (kubectl apply --server-side -k k8s/agent-sandbox/${AGENT_SANDBOX_VERSION}: k8s/README.md), then retry`,
        { missing },
      );
    }
    this.apisChecked = true;
  }

  /** The object, or null when it does not exist. */
  get<T extends K8sObject>(ref: Ref): Promise<T | null> {
    return this.call(
      "get",
      ref.kind,
      ref.namespace,
      () => this.objects.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } } as never),
      { absentOk: true },
    );
  }

  async list<T extends K8sObject>(apiVersion: string, kind: string, labelSelector: string, namespace?: string): Promise<T[]> {
    const res = await this.call("list", kind, namespace, () =>
      this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector),
    );
    return res.items;
  }

  /** Create; an object of that name already there is KubernetesConflictError (the caller decides whether it is its own). */
  create<T extends K8sObject>(obj: T): Promise<T> {
    return this.call("create", obj.kind, obj.metadata.namespace, () => this.objects.create(obj, undefined, undefined, MANAGER), { name: obj.metadata.name });
  }

  /** Server-side apply: create or update, owning exactly the fields given. */
  apply<T extends K8sObject>(obj: T): Promise<T> {
    return this.call(
      "patch",
      obj.kind,
      obj.metadata.namespace,
      () => this.objects.patch(obj, undefined, undefined, MANAGER, true, PatchStrategy.ServerSideApply),
      { name: obj.metadata.name },
    );
  }

  mergePatch(ref: Ref, patch: Record<string, unknown>): Promise<K8sObject> {
    const body = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace }, ...patch };
    return this.call(
      "patch",
      ref.kind,
      ref.namespace,
      () => this.objects.patch(body as K8sObject, undefined, undefined, MANAGER, undefined, PatchStrategy.MergePatch),
      { name: ref.name },
    );
  }

  /** Delete; `uid` guards against deleting a newer object of the same name. false: already gone. */
  async delete(ref: Ref, opts: { uid?: string; propagation?: "Background" | "Foreground" } = {}): Promise<boolean> {
    const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } };
    const body = { propagationPolicy: opts.propagation ?? "Background", ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}) };
    // 404: gone; 409: the uid precondition failed (a newer object has that name): not ours.
    const res = await this.call(
      "delete",
      ref.kind,
      ref.namespace,
      () => this.objects.delete(spec, undefined, undefined, undefined, undefined, body.propagationPolicy, body),
      { absentOk: true, conflictOk: true, name: ref.name },
    );
    return res !== null && res !== CONFLICT;
  }

  /**
   * Resolves with check(obj) once it returns a value (obj is null when the object does not
   * exist). Watches the one object; when the watch ends or errors (API server restart, idle
   * timeout, dropped connection, a 410 Gone ERROR event) it re-reads and watches again, until
   * timeoutMs. Re-reading first means an event missed between two watches is never lost.
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
      const found = await new Promise<{ value: R } | { error: unknown } | undefined>((resolve) => {
        let settled = false;
        let opened = false;
        let abort: AbortController | undefined;
        const finish = (v: { value: R } | { error: unknown } | undefined, dropped = false) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (opened) this.watches.open--;
          if (dropped) this.watches.dropped++;
          abort?.abort();
          resolve(v);
        };
        // Re-read at least every 10 s: a watch can stall without an error.
        const timer = setTimeout(() => finish(undefined), Math.min(remaining, 10_000));
        this.count("watch");
        void new Watch(this.kc)
          .watch(
            path,
            {
              fieldSelector: `metadata.name=${ref.name}`,
              allowWatchBookmarks: false,
              ...(last?.metadata.resourceVersion ? { resourceVersion: last.metadata.resourceVersion } : {}),
            },
            (phase, obj: K8sObject) => {
              if (!opened && !settled) {
                opened = true;
                this.watches.open++;
              }
              // ERROR carries a Status (410 Gone: the resourceVersion is too old), not the object.
              if (phase === "ERROR") return finish(undefined, true);
              if (phase === "BOOKMARK") return;
              last = phase === "DELETED" ? null : obj;
              try {
                const v = check(last);
                if (v !== undefined) finish({ value: v });
              } catch (error) {
                finish({ error });
              }
            },
            () => finish(undefined, true),
          )
          .then((a) => {
            abort = a;
            // watch() resolves once the response headers are in: the watch is open.
            if (settled) a.abort();
            else if (!opened) {
              opened = true;
              this.watches.open++;
            }
          });
      });
      if (found && "error" in found) throw found.error;
      if (found) return found.value;
      if (attempt > 0) await sleep(Math.min(1_000, Math.max(0, deadline - Date.now())));
    }
    const cond = (last?.status?.conditions as { type: string; reason?: string; message?: string }[] | undefined)?.find((c) => c.type === "Ready");
    const why = cond
      ? ` (Ready: ${cond.reason ?? "?"}${cond.message ? `: ${cond.message}` : ""})`
      : last && !last.status
        ? " (it has no status yet: is the agent-sandbox controller running?)"
        : "";
    throw new SandboxUnavailableError(`timed out after ${timeoutMs} ms waiting for ${what}${why}`, {
      kind: ref.kind,
      name: ref.name,
      namespace: ref.namespace,
    });
  }

  private count(verb: string) {
    this.calls[verb] = (this.calls[verb] ?? 0) + 1;
  }

  /**
   * One request with the failure modes sorted out. absentOk: an object 404 resolves null;
   * conflictOk: a 409 resolves CONFLICT. Every other failure becomes a SandboxError.
   */
  private async call<T>(
    verb: string,
    kind: string,
    namespace: string | undefined,
    fn: () => Promise<T>,
    o: { absentOk?: boolean; conflictOk?: boolean; name?: string } = {},
  ): Promise<T> {
    const deadline = Date.now() + this.opts.retryMs;
    const resource = PLURALS[kind] ?? kind.toLowerCase();
    const where = namespace ? ` in namespace ${namespace}` : "";
    for (let attempt = 1; ; attempt++) {
      this.count(verb);
      try {
        await this.opts.beforeCall?.(verb, kind);
        return await fn();
      } catch (err) {
        const code = err instanceof ApiException ? err.code : undefined;
        const details = { verb, resource, namespace, ...(o.name ? { name: o.name } : {}), ...(code ? { status: code } : {}), reason: apiMessage(err) };
        if (code === 401 || code === 403) {
          throw new KubernetesForbiddenError(
            `the Kubernetes API refused to ${verb} ${resource}${where} (${code}${code === 401 ? ": the credentials are not accepted" : `: ${apiMessage(err)}`}): ` +
              `bind the ServiceAccount this process runs as to the ClusterRole keel-platform (k8s/base/rbac.yaml)`,
            details,
            { cause: err },
          );
        }
        if (code === 404 && isObjectNotFound(err)) {
          if (o.absentOk) return null as T;
        } else if ((code === 404 || isUnknownKind(err)) && AGENT_SANDBOX_KINDS.has(kind)) {
          // The resource itself is gone: agent-sandbox was uninstalled (or half installed) after
          // the driver checked. Check again (with a fresh discovery cache) on the next call.
          this.apisChecked = false;
          this.objects = objectsClient(this.kc);
          throw new AgentSandboxMissingError(
            `agent-sandbox is not installed in this cluster: the API server does not serve ${resource} (${verb}${where}: ${apiMessage(err)}). ` +
              `Install agent-sandbox ${AGENT_SANDBOX_VERSION} with its extensions (kubectl apply --server-side -k k8s/agent-sandbox/${AGENT_SANDBOX_VERSION}: k8s/README.md), then retry`,
            details,
          );
        }
        if (code === 409 && o.conflictOk) return CONFLICT as T;
        if (code === 409 && verb === "create") {
          throw new KubernetesConflictError(`${resource} ${o.name ?? ""}${where} already exists`, details, { cause: err });
        }
        const transient = code === 429 || (code !== undefined && code >= 500) || (code === undefined && isNetworkError(err));
        if (!transient) {
          throw new KubernetesApiError(
            `the Kubernetes API refused to ${verb} ${resource}${o.name ? ` ${o.name}` : ""}${where}${code ? ` (${code})` : ""}: ${apiMessage(err)}`,
            details,
            { cause: err },
          );
        }
        // Jittered, so workers cut off together do not come back in step.
        const delay = backoffMs(attempt, 100, 2_000);
        if (Date.now() + delay > deadline) {
          throw new SandboxUnavailableError(
            `the Kubernetes API server is unreachable (${verb} ${kind}): ${apiMessage(err)}; gave up after ${attempt} attempts in ${this.opts.retryMs} ms`,
            { ...details, attempts: attempt },
            { cause: err },
          );
        }
        this.opts.logger.warn({ verb, kind, namespace, status: code, attempt, retryInMs: delay, err: apiMessage(err) }, "kubernetes api call failed; retrying");
        await sleep(delay);
      }
    }
  }
}

const CONFLICT = Symbol("conflict");

// Loosely typed: our K8sObject is plain JSON (custom resources), not the generated models.
// `resource(apiVersion, kind)` is the discovery lookup (GET /apis/<group>/<version>, cached per
// client) KubernetesObjectApi does before every request; protected in its typings, public in JS.
type ObjectsClient = { [K in "read" | "list" | "create" | "patch" | "delete" | "resource"]: (...args: any[]) => Promise<any> };
const objectsClient = (kc: KubeConfig) => KubernetesObjectApi.makeApiClient(kc) as unknown as ObjectsClient;

function body(err: ApiException<unknown>): { message?: string; reason?: string; details?: { name?: string } } | undefined {
  try {
    return typeof err.body === "string" ? JSON.parse(err.body) : (err.body as never);
  } catch {
    return undefined;
  }
}

/** A 404 about an object (Status with details.name), as opposed to "the server could not find the requested resource". */
function isObjectNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404 && !!body(err)?.details?.name;
}

/** client-node's own error when discovery does not list the kind (KubernetesObjectApi.resource). */
function isUnknownKind(err: unknown): boolean {
  return !(err instanceof ApiException) && /Unrecognized API version and kind/.test((err as Error)?.message ?? "");
}

/** Connection refused or reset, DNS, TLS handshake, socket timeout: node-fetch's FetchError (type "system") or a Node error code. */
function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string; type?: string; code?: unknown; cause?: { code?: unknown } } | undefined;
  if (!e) return false;
  if (e.name === "FetchError" || e.type === "system") return true;
  const code = typeof e.code === "string" ? e.code : typeof e.cause?.code === "string" ? e.cause.code : "";
  return /^(E[A-Z]+|UND_ERR_\w+|ERR_SSL_\w+|ERR_TLS_\w+)$/.test(code);
}

export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const b = body(err);
    if (b?.message) return String(b.message);
    return `HTTP ${err.code}`;
  }
  return (err as Error)?.message ?? String(err);
}
