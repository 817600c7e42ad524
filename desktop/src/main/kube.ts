// Kubeconfig contexts and per-context health, for the desktop main process. Plain Node (no
// Electron) so tests run it against the real control plane.
//
// Requests go through node:http(s) with KubeConfig.applyToHTTPSOptions rather than the generated
// clients: that still applies every credential type client-node supports (token, client cert,
// exec plugin, auth provider), but gives one place for a hard timeout (a blackholed server must
// not hang the UI for the OS's TCP timeout) and for turning failures into operator messages.
import { existsSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { KubeConfig, type Cluster, type Context, type User } from "@kubernetes/client-node";
import { AGENT_SANDBOX_VERSION, API_VERSION, CORE_GROUP, EXT_GROUP } from "@keel/core/k8s";
import type { Check, ContextList, ContextStatus, ErrorCode } from "../shared/contract.ts";

export const KEEL_NAMESPACE = "keel";
export const KEEL_WEB_DEPLOYMENT = "keel-web";
const DEFAULT_TIMEOUT_MS = 5_000;

export class KubeError extends Error {
  override readonly name = "KubeError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Kubeconfig = { kc: KubeConfig; files: string[] };

/**
 * Reads kubeconfig the way kubectl does: $KUBECONFIG as a list of files (':' on Unix, ';' on
 * Windows; missing files skipped), else ~/.kube/config. When files disagree, the first file to
 * name a cluster, user or context wins, and the first current-context wins. (client-node's own
 * loadFromDefault throws on a duplicate name and lets the last current-context win.)
 */
export function loadKubeconfig(opts: { env?: { KUBECONFIG?: string | undefined }; home?: string } = {}): Kubeconfig {
  const env = opts.env ?? process.env;
  const files = env.KUBECONFIG
    ? env.KUBECONFIG.split(path.delimiter).filter((f) => f && existsSync(f))
    : [path.join(opts.home ?? os.homedir(), ".kube", "config")].filter((f) => existsSync(f));
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, Context>();
  let current = "";
  for (const file of files) {
    const one = new KubeConfig();
    try {
      // loadFromFile resolves relative certificate paths against the file's directory.
      one.loadFromFile(file);
    } catch (err) {
      throw new KubeError("kubeconfig_invalid", `cannot read kubeconfig ${file}: ${(err as Error).message}. Fix or remove it from KUBECONFIG`, undefined, {
        cause: err,
      });
    }
    for (const c of one.getClusters()) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of one.getUsers()) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of one.getContexts()) if (!contexts.has(c.name)) contexts.set(c.name, c);
    current ||= one.getCurrentContext() ?? "";
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [...clusters.values()], users: [...users.values()], contexts: [...contexts.values()], currentContext: current });
  return { kc, files };
}

export function listContexts({ kc, files }: Kubeconfig): ContextList {
  const current = kc.getCurrentContext();
  return {
    current: current && kc.getContextObject(current) ? current : null,
    files,
    contexts: kc.getContexts().map((c) => ({
      name: c.name,
      cluster: c.cluster,
      user: c.user,
      namespace: c.namespace ?? null,
      server: kc.getCluster(c.cluster)?.server ?? null,
    })),
  };
}

/** A KubeConfig whose current context is `context`, for one cluster's requests. */
export function kubeConfigFor({ kc }: Kubeconfig, context: string): KubeConfig {
  const ctx = kc.getContextObject(context);
  if (!ctx) {
    const known = kc.getContexts().map((c) => c.name);
    throw new KubeError(
      "context_not_found",
      `no context "${context}" in your kubeconfig (contexts: ${known.join(", ") || "none"}). Check KUBECONFIG or run kubectl config get-contexts`,
    );
  }
  const cluster = kc.getCluster(ctx.cluster);
  if (!cluster) throw new KubeError("kubeconfig_invalid", `context "${context}" refers to cluster "${ctx.cluster}", which is not in your kubeconfig`);
  const one = new KubeConfig();
  one.loadFromOptions({ clusters: [cluster], users: kc.getUsers().filter((u) => u.name === ctx.user), contexts: [ctx], currentContext: context });
  return one;
}

const describe = (kc: KubeConfig) => {
  const ctx = kc.getCurrentContext();
  return { context: ctx, server: kc.getCurrentCluster()?.server ?? "(no server)", user: kc.getContextObject(ctx)?.user ?? "(no user)" };
};

export type KubeResponse<T> = { status: number; body: T };

/**
 * One API request with the context's credentials. Resolves with any HTTP status (callers decide
 * what 404 means); 401 always throws (no request can succeed with rejected credentials), and
 * network/TLS failures throw `unreachable` / `tls_error` with the server named.
 */
export async function kubeRequest<T = any>(
  kc: KubeConfig,
  method: "GET" | "POST" | "PATCH" | "DELETE",
  apiPath: string,
  opts: { body?: unknown; contentType?: string; timeoutMs?: number } = {},
): Promise<KubeResponse<T>> {
  const who = describe(kc);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new KubeError("kubeconfig_invalid", `context "${who.context}" has no cluster server address in your kubeconfig`);
  const url = new URL(apiPath, cluster.server.replace(/\/?$/, "/"));
  const reqOpts: https.RequestOptions = { method, headers: { Accept: "application/json" } };
  try {
    await kc.applyToHTTPSOptions(reqOpts);
  } catch (err) {
    // An exec plugin that cannot be run (not on PATH, not executable) or fails: its own error, with
    // the plugin's words; it is not the server refusing credentials.
    const user = kc.getCurrentUser();
    const plugin = user?.exec?.command ?? (user?.authProvider?.config?.exec as { command?: string } | undefined)?.command;
    if (plugin) {
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === "ENOENT"
          ? `it is not on the app's PATH (${e.message}). Install it, or start the app from a shell where \`${plugin}\` works`
          : e.code === "EACCES"
            ? `it is not executable (${e.message})`
            : `${(e.message || "it exited with an error").trim()}. Log in again with it (for example aws sso login, gcloud auth login, az login), then retry`;
      throw new KubeError("credential_plugin_failed", `could not run ${plugin} for user "${who.user}" of context "${who.context}": ${why}`, undefined, {
        cause: err,
      });
    }
    // An unreadable key file, an auth provider that fails, …
    throw new KubeError(
      "unauthorized",
      `cannot get credentials for user "${who.user}" of context "${who.context}": ${(err as Error).message}. Log in again with the tool your kubeconfig runs, then retry`,
      undefined,
      { cause: err },
    );
  }
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) reqOpts.headers = { ...(reqOpts.headers as object), "Content-Type": opts.contentType ?? "application/json" };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const mod = url.protocol === "http:" ? http : https;
    const req = mod.request(url, reqOpts, (r) => {
      let text = "";
      r.setEncoding("utf8")
        .on("data", (d: string) => (text += d))
        .on("end", () => resolve({ status: r.statusCode ?? 0, text }))
        .on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(payload);
  }).catch((err: NodeJS.ErrnoException) => {
    const code = err.code ?? "";
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code) || /certificate/i.test(err.message)) {
      throw new KubeError(
        "tls_error",
        `cannot verify the API server of context "${who.context}" at ${who.server}: ${err.message} (${code}). The certificate-authority in your kubeconfig does not match the server; re-export the kubeconfig for this cluster`,
        undefined,
        { cause: err },
      );
    }
    throw new KubeError(
      "unreachable",
      `cannot reach the API server of context "${who.context}" at ${who.server}: ${err.message}${code && !err.message.includes(code) ? ` (${code})` : ""}. ` +
        `Check that the cluster is running (for kind: docker ps, kind get clusters) and that you are on the right network or VPN`,
      undefined,
      { cause: err },
    );
  });
  let body: any = res.text;
  try {
    body = res.text ? JSON.parse(res.text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  if (res.status === 401) {
    throw new KubeError(
      "unauthorized",
      `the API server of context "${who.context}" (${who.server}) rejected the credentials of user "${who.user}" (401 Unauthorized): ` +
        `the token or client certificate is expired or invalid. Get fresh credentials (your cloud's get-credentials command, or kind export kubeconfig) and retry`,
      401,
    );
  }
  return { status: res.status, body: body as T };
}

/** Server's message from a Status body, or the HTTP code. */
export function statusMessage(res: KubeResponse<any>): string {
  return typeof res.body?.message === "string" ? res.body.message : `HTTP ${res.status}`;
}

/** Throws for statuses that are not `ok`: 403 names what was refused and to whom. */
export function expectStatus<T>(kc: KubeConfig, res: KubeResponse<T>, action: string, ok: number[] = [200, 201]): T {
  if (ok.includes(res.status)) return res.body;
  const who = describe(kc);
  const msg = statusMessage(res);
  if (res.status === 403) {
    throw new KubeError(
      "forbidden",
      `user "${who.user}" of context "${who.context}" may not ${action} (403 Forbidden: ${msg}). Ask a cluster admin for a Role that allows it, or pick another context`,
      403,
    );
  }
  if (res.status === 404) throw new KubeError("not_found", `cannot ${action}: not found (${msg})`, 404);
  if (res.status === 409) throw new KubeError("conflict", `cannot ${action}: ${msg}`, 409);
  if (res.status === 422 || res.status === 400) throw new KubeError("invalid_input", `cannot ${action}: ${msg}`, res.status);
  throw new KubeError("kube_api_error", `cannot ${action}: ${msg} (HTTP ${res.status})`, res.status);
}

/** GET /version: the server answers and accepts the credentials. */
export async function checkConnection(kc: KubeConfig, timeoutMs?: number): Promise<{ version: string }> {
  const res = await kubeRequest<{ gitVersion?: string }>(kc, "GET", "/version", { timeoutMs });
  const body = expectStatus(kc, res, "read the server version");
  return { version: body?.gitVersion ?? "unknown" };
}

/** Both agent-sandbox API groups served at v1beta1 (the CRDs are installed). */
export async function checkAgentSandbox(kc: KubeConfig, timeoutMs?: number): Promise<void> {
  const missing: string[] = [];
  for (const group of [CORE_GROUP, EXT_GROUP]) {
    const res = await kubeRequest(kc, "GET", `/apis/${group}/${API_VERSION}`, { timeoutMs });
    if (res.status === 404) missing.push(`${group}/${API_VERSION}`);
    else expectStatus(kc, res, `discover the API group ${group}`);
  }
  if (missing.length) {
    const { context } = describe(kc);
    throw new KubeError(
      "agent_sandbox_missing",
      `agent-sandbox is not installed in context "${context}": the API server does not serve ${missing.join(" and ")}. ` +
        `Install agent-sandbox ${AGENT_SANDBOX_VERSION} with its extensions (kind/up.sh shows how), then retry`,
    );
  }
}

/** Namespace `keel` with Deployment `keel-web` (what k8s/base installs). */
export async function checkKeelInstall(kc: KubeConfig, timeoutMs?: number): Promise<void> {
  const { context } = describe(kc);
  const hint = `Install Keel with kubectl apply --server-side -k k8s/overlays/<kind|production> (or kind/up.sh for a local cluster)`;
  const ns = await kubeRequest(kc, "GET", `/api/v1/namespaces/${KEEL_NAMESPACE}`, { timeoutMs });
  if (ns.status === 404)
    throw new KubeError("keel_missing", `Keel is not installed in context "${context}": there is no namespace "${KEEL_NAMESPACE}". ${hint}`);
  expectStatus(kc, ns, `read namespace ${KEEL_NAMESPACE}`);
  const dep = await kubeRequest(kc, "GET", `/apis/apps/v1/namespaces/${KEEL_NAMESPACE}/deployments/${KEEL_WEB_DEPLOYMENT}`, { timeoutMs });
  if (dep.status === 404)
    throw new KubeError(
      "keel_missing",
      `Keel is not installed in context "${context}": namespace "${KEEL_NAMESPACE}" has no Deployment "${KEEL_WEB_DEPLOYMENT}". ${hint}`,
    );
  expectStatus(kc, dep, `read deployment ${KEEL_NAMESPACE}/${KEEL_WEB_DEPLOYMENT}`);
}

async function check<T extends object>(fn: () => Promise<T | void>): Promise<Check<any>> {
  try {
    return { ok: true, ...((await fn()) ?? {}) };
  } catch (err) {
    if (err instanceof KubeError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

/** Every check for one context; cluster problems become failed checks, never a throw. */
export async function contextStatus(
  config: Kubeconfig,
  context: string,
  opts: { timeoutMs?: number } = {},
  kc: KubeConfig = kubeConfigFor(config, context),
): Promise<ContextStatus> {
  const connection = await check(() => checkConnection(kc, opts.timeoutMs));
  const reached = connection.ok;
  const [agentSandbox, keel] = reached
    ? await Promise.all([check(() => checkAgentSandbox(kc, opts.timeoutMs)), check(() => checkKeelInstall(kc, opts.timeoutMs))])
    : [null, null];
  return { context, server: kc.getCurrentCluster()?.server ?? null, connection, agentSandbox, keel };
}
