// Helpers for the e2e suite: kubectl against the kind cluster, and the public API as a logged-in
// admin (cookie + CSRF header, like the dashboard).
import { spawnSync } from "node:child_process";
import path from "node:path";

export const repoRoot = path.resolve(import.meta.dirname, "..");
export const PORT = Number(process.env.KEEL_PORT ?? 3000);
export const BASE_URL = `http://localhost:${PORT}`;
export const CONTEXT = `kind-${process.env.KEEL_KIND_CLUSTER ?? "keel"}`;

/**
 * kind/up.sh's and kubectl's environment: the kind and kubectl built by kind/airgap/build-bins.sh
 * (kubectl v1.36, the cluster's version) come first on PATH when they exist.
 */
export function kindEnv(): NodeJS.ProcessEnv {
  const cache = process.env.KEEL_KIND_CACHE ?? path.join(process.env.HOME ?? "/root", ".cache/keel-kind");
  return { ...process.env, PATH: `${path.join(cache, "bin")}:${process.env.PATH}` };
}

export type Run = { status: number; stdout: string; stderr: string };

export function kubectl(args: string[], opts: { input?: string; allowFail?: boolean } = {}): Run {
  const r = spawnSync("kubectl", ["--context", CONTEXT, ...args], { encoding: "utf8", env: kindEnv(), input: opts.input, maxBuffer: 64 << 20 });
  const out = { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  if (out.status !== 0 && !opts.allowFail) throw new Error(`kubectl ${args.join(" ")} failed (${out.status}): ${out.stderr}`);
  return out;
}

export function kubectlJson<T = any>(args: string[]): T {
  return JSON.parse(kubectl([...args, "-o", "json"]).stdout) as T;
}

/** The admin login kind/up.sh generated (Secret keel/keel-admin). */
export function adminLogin(): { email: string; password: string } {
  const s = kubectlJson<{ data: Record<string, string> }>(["-n", "keel", "get", "secret", "keel-admin"]);
  const dec = (k: string) => Buffer.from(s.data[k]!, "base64").toString("utf8");
  return { email: dec("KEEL_ADMIN_EMAIL"), password: dec("KEEL_ADMIN_PASSWORD") };
}

export class Api {
  private constructor(private cookie: string, private csrf: string) {}

  static async login(): Promise<Api> {
    const r = await fetch(`${BASE_URL}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(adminLogin()) });
    if (r.status !== 200) throw new Error(`login: ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { csrfToken: string };
    return new Api(r.headers.get("set-cookie")!.split(";")[0]!, body.csrfToken);
  }

  async call<T = any>(method: string, p: string, body?: unknown, expectStatus = method === "POST" ? [200, 201, 202] : [200]): Promise<T> {
    const r = await fetch(`${BASE_URL}${p}`, {
      method,
      headers: { cookie: this.cookie, "x-csrf-token": this.csrf, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!expectStatus.includes(r.status)) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A demo-model agent with the sandbox tools, and a new session of it. */
  async agentSession(name: string, sandboxPolicy: Record<string, unknown> = {}): Promise<{ agentId: string; sessionId: string }> {
    const agent = await this.call<{ id: string }>("POST", "/api/v1/agents", { name, model: "demo", tools: ["exec", "read_file", "write_file", "list_files"], sandboxPolicy });
    const session = await this.call<{ id: string }>("POST", "/api/v1/sessions", { agentId: agent.id });
    return { agentId: agent.id, sessionId: session.id };
  }

  async events(sessionId: string): Promise<{ seq: string; type: string; payload: any }[]> {
    return (await this.call<{ events: { seq: string; type: string; payload: any }[] }>("GET", `/api/v1/sessions/${sessionId}/events`)).events;
  }
}

/** Polls `fn` until it returns something other than null/undefined/false. No fixed sleeps in tests. */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, o: { what: string; timeoutMs?: number; everyMs?: number }): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 180_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 500));
  }
}

/** The pod serving a session's sandbox: its claim (labelled with the session) → Sandbox → Pod. */
export function sandboxPod(sessionId: string): { namespace: string; name: string; ip: string; node: string } | null {
  const claims = kubectlJson<{ items: any[] }>(["get", "sandboxclaims.extensions.agents.x-k8s.io", "-A", "-l", `keel.dev/session=${sessionId}`]).items;
  const claim = claims[0];
  const sandbox = claim?.status?.sandbox?.name ?? claim?.status?.sandboxStatus?.name;
  if (!claim || !sandbox) return null;
  const ns = claim.metadata.namespace as string;
  const pods = kubectlJson<{ items: any[] }>(["-n", ns, "get", "pods"]).items;
  const pod = pods.find((p) => p.metadata.name === sandbox || (p.metadata.ownerReferences ?? []).some((o: any) => o.kind === "Sandbox" && o.name === sandbox));
  if (!pod || pod.status?.phase !== "Running" || pod.metadata.deletionTimestamp) return null;
  return { namespace: ns, name: pod.metadata.name, ip: pod.status.podIP, node: pod.spec.nodeName };
}

/** Deletes a session's SandboxClaim (its Sandbox and pod go with it), as the idle reaper would: frees the node for the next test. */
export function releaseSandbox(sessionId: string): void {
  kubectl(["delete", "sandboxclaims.extensions.agents.x-k8s.io", "-A", "-l", `keel.dev/session=${sessionId}`, "--wait=false"], { allowFail: true });
}
