// Helpers for the e2e suite: kubectl against the kind cluster, and the public API as a logged-in
// admin (cookie + CSRF header, like the dashboard).
import { spawn, spawnSync } from "node:child_process";
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

/**
 * A command in the repo root with kind/up.sh's environment (docker builds with the classic
 * builder, as kind/up.sh runs them); throws with its output when it fails. Returns stdout.
 */
export function run(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): string {
  const r = spawnSync(cmd, args, {
    cwd: repoRoot,
    env: { ...kindEnv(), DOCKER_BUILDKIT: "0", ...opts.env },
    input: opts.input,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** kubectl without blocking the event loop: for many pods at once (the rollout test's 20). */
export function kubectlAsync(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("kubectl", ["--context", CONTEXT, ...args], { env: kindEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", (err) => resolve({ status: -1, stdout, stderr: stderr + err.message }));
    child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
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
  private constructor(
    private cookie: string,
    private csrf: string,
  ) {}

  /** Logs in as kind/up.sh's admin, or as `as` (another team's admin, network.test.ts). */
  static async login(as: { email: string; password: string } = adminLogin()): Promise<Api> {
    const r = await fetch(`${BASE_URL}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(as) });
    if (r.status !== 200) throw new Error(`login: ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { csrfToken: string };
    return new Api(r.headers.get("set-cookie")!.split(";")[0]!, body.csrfToken);
  }

  /** What a GET needs (the cookie; CSRF is only checked on writes): for SSE streams. */
  get authHeaders(): Record<string, string> {
    return { cookie: this.cookie };
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
    const agent = await this.call<{ id: string }>("POST", "/api/v1/agents", {
      name,
      model: "demo",
      tools: ["exec", "read_file", "write_file", "list_files"],
      sandboxPolicy,
    });
    const session = await this.call<{ id: string }>("POST", "/api/v1/sessions", { agentId: agent.id });
    return { agentId: agent.id, sessionId: session.id };
  }

  async events(sessionId: string): Promise<{ seq: string; type: string; payload: any }[]> {
    return (await this.call<{ events: { seq: string; type: string; payload: any }[] }>("GET", `/api/v1/sessions/${sessionId}/events`)).events;
  }
}

/**
 * A second team and its admin, made the way Keel makes teams today (there is no team API): the
 * web's first-admin bootstrap (KEEL_ADMIN_EMAIL/PASSWORD/TEAM) in a one-off copy of a web pod.
 */
export function bootstrapTeam(team: { slug: string; email: string; password: string }, podName: string): void {
  const template = kubectlJson(["-n", "keel", "get", "deployment", "keel-web"]).spec.template;
  const spec = structuredClone(template.spec);
  delete spec.initContainers; // the schema is current: the web Deployment's pods migrated it
  const web = spec.containers[0];
  web.env = [
    ...(web.env ?? []),
    { name: "KEEL_ADMIN_EMAIL", value: team.email },
    { name: "KEEL_ADMIN_PASSWORD", value: team.password },
    { name: "KEEL_ADMIN_TEAM", value: team.slug },
  ];
  // The web's labels: the platform's NetworkPolicies (k8s/base/network.yaml) let only web and
  // worker pods reach Postgres. So while it lives it is one more web replica behind the Service,
  // serving the same database; it is gone (not just terminating) before the tests start.
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: podName, labels: template.metadata.labels }, spec };
  kubectl(["-n", "keel", "apply", "-f", "-"], { input: JSON.stringify(pod) });
  // Ready = /readyz answered 200, which starts the web's context and with it the bootstrap.
  kubectl(["-n", "keel", "wait", "--for=condition=Ready", `pod/${podName}`, "--timeout=240s"]);
  kubectl(["-n", "keel", "delete", "pod", podName, "--timeout=120s"]);
}

/** Polls `fn` until it returns something other than null/undefined/false. No fixed sleeps in tests. */
export async function waitFor<T>(
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  o: { what: string; timeoutMs?: number; everyMs?: number },
): Promise<T> {
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
export function sandboxPod(sessionId: string): SandboxPod | null {
  return sandboxPods([sessionId]).get(sessionId) ?? null;
}

export type SandboxPod = { namespace: string; name: string; ip: string; node: string };

/** sandboxPod for many sessions with two kubectl calls (the rollout test asks for 20 every round). */
export function sandboxPods(sessionIds: string[]): Map<string, SandboxPod> {
  const claims = kubectlJson<{ items: any[] }>(claimsArgs(sessionIds)).items;
  return matchPods(sessionIds, claims, kubectlJson<{ items: any[] }>(podsArgs(claims)).items);
}

/** sandboxPods without blocking the event loop (SSE clients in the same process keep reading). */
export async function sandboxPodsAsync(sessionIds: string[]): Promise<Map<string, SandboxPod>> {
  const json = async (args: string[]) => {
    const r = await kubectlAsync([...args, "-o", "json"]);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
    return (JSON.parse(r.stdout) as { items: any[] }).items;
  };
  const claims = await json(claimsArgs(sessionIds));
  return matchPods(sessionIds, claims, await json(podsArgs(claims)));
}

const claimsArgs = (ids: string[]) => [
  "get",
  "sandboxclaims.extensions.agents.x-k8s.io",
  "-A",
  "-l",
  ids.length === 1 ? `keel.dev/session=${ids[0]}` : "keel.dev/session",
];

function podsArgs(claims: any[]): string[] {
  const namespaces = new Set(claims.map((c) => c.metadata.namespace as string));
  return namespaces.size === 1 ? ["-n", [...namespaces][0]!, "get", "pods"] : ["get", "pods", "-A"];
}

function matchPods(sessionIds: string[], claims: any[], pods: any[]): Map<string, SandboxPod> {
  const wanted = new Set(sessionIds);
  const out = new Map<string, SandboxPod>();
  for (const claim of claims) {
    const session = claim.metadata.labels?.["keel.dev/session"] as string;
    const sandbox = claim.status?.sandbox?.name ?? claim.status?.sandboxStatus?.name;
    if (!wanted.has(session) || !sandbox) continue;
    const ns = claim.metadata.namespace as string;
    const pod = pods.find(
      (p) =>
        p.metadata.namespace === ns &&
        (p.metadata.name === sandbox || (p.metadata.ownerReferences ?? []).some((o: any) => o.kind === "Sandbox" && o.name === sandbox)),
    );
    if (!pod || pod.status?.phase !== "Running" || pod.metadata.deletionTimestamp) continue;
    out.set(session, { namespace: ns, name: pod.metadata.name, ip: pod.status.podIP, node: pod.spec.nodeName });
  }
  return out;
}

/** Deletes a session's SandboxClaim (its Sandbox and pod go with it), as the idle reaper would: frees the node for the next test. */
export function releaseSandbox(sessionId: string): void {
  kubectl(["delete", "sandboxclaims.extensions.agents.x-k8s.io", "-A", "-l", `keel.dev/session=${sessionId}`, "--wait=false"], { allowFail: true });
}

/** Exit code of a TCP connect from a pod (0: connected, 3: refused or timed out), through the sandbox image's python3. */
export function connectFrom(ns: string, podName: string, host: string, port: number): number {
  const py = `import socket,sys\ns=socket.socket()\ns.settimeout(5)\nsys.exit(0 if s.connect_ex((${JSON.stringify(host)},${port}))==0 else 3)`;
  return kubectl(["-n", ns, "exec", podName, "--", "python3", "-c", py], { allowFail: true }).status;
}

/**
 * Exit code of a TCP connect (0: connected, 3: refused or timed out) from a running web or worker
 * pod, through node (the Keel image has no python3): what the platform's own NetworkPolicies
 * (k8s/base/network.yaml) let that pod reach.
 */
export function connectFromPlatform(component: "web" | "worker", host: string, port: number): number {
  const pod = kubectlJson<{ items: any[] }>([
    "-n",
    "keel",
    "get",
    "pods",
    "-l",
    `app.kubernetes.io/name=keel,app.kubernetes.io/component=${component}`,
    "--field-selector=status.phase=Running",
  ]).items.find((p) => !p.metadata.deletionTimestamp);
  if (!pod) throw new Error(`no running ${component} pod`);
  const js = `const s=require("net").connect(${port},${JSON.stringify(host)});s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(3));setTimeout(()=>process.exit(3),5000)`;
  return kubectl(["-n", "keel", "exec", pod.metadata.name, "-c", component, "--", "node", "-e", js], { allowFail: true }).status;
}
