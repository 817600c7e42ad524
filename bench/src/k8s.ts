// Kubernetes sandbox driver figures (issue 7): acquire → Ready with and without a warm pool on the
// local control plane (controlplane/: kube-apiserver, controller-manager, scheduler, kwok,
// agent-sandbox v1.0.1; the figures in BENCHMARKS.md were measured on v0.5.6), and the driver's API calls per session (acquire + release).
//
//   npm run bench:k8s                      (= tsx bench/src/k8s.ts)
//   BENCH_K8S_N=10 BENCH_K8S_POOL=1 npm run bench:k8s
//
// kwok runs no containers: "Ready" means agent-sandbox created the Sandbox and Pod, the scheduler
// bound it to the simulated node, kwok marked it Running/Ready with an IP, agent-sandbox copied
// that into the claim, and the driver saw it through its watch. No image pull, no container start,
// no runtime /healthz: a real cluster adds all of that (cold) or none of it (warm pool).
//
// The driver runs as the platform ServiceAccount (k8s/base/rbac.yaml, applied for real, as in
// core/test/k8s/driver.test.ts). Starts the control plane when it is not running (and stops it
// at the end, unless BENCH_K8S_KEEP_CP=1); deletes every namespace it created. The markdown goes
// to stdout, progress and the load average to stderr.
import { randomBytes } from "node:crypto";
import os from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, stopControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { applyPlatformRbac, type PlatformIdentity } from "@keel/core/testing/k8s";
import { KubernetesSandboxDriver, parseSandboxPolicy, type SandboxHandle } from "@keel/core";
import { dist, fmtMs, load, log } from "./util.js";

const N = Number(process.env.BENCH_K8S_N ?? 10);
const POOL = Math.max(1, Number(process.env.BENCH_K8S_POOL ?? 1));
const command = "npm run bench:k8s";
const prefix = `kb${randomBytes(2).toString("hex")}-`;
const policy = parseSandboxPolicy({ template: "default" });
const CLAIMS = "sandboxclaims.v1beta1.extensions.agents.x-k8s.io";
const SANDBOXES = "sandboxes.v1beta1.agents.x-k8s.io";
const POOLS = "sandboxwarmpools.v1beta1.extensions.agents.x-k8s.io";

type Calls = Record<string, number>;
const diff = (a: Calls, b: Calls): Calls =>
  Object.fromEntries(
    Object.keys(a)
      .map((k) => [k, a[k]! - (b[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
const total = (c: Calls) => Object.values(c).reduce((x, y) => x + y, 0);
const fmtCalls = (c: Calls) =>
  Object.entries(c)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");

let weStarted = false;
const tokenKey = randomBytes(32);
let home: TestNamespace | undefined;
let platform: PlatformIdentity | undefined;
const live: { driver: KubernetesSandboxDriver; h: SandboxHandle }[] = [];

function driverFor(kubeconfig: string, warmPoolReplicas: number): KubernetesSandboxDriver {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfig);
  return new KubernetesSandboxDriver({
    kubeConfig,
    tokenKey,
    image: "registry.invalid/keel:bench",
    namespacePrefix: prefix,
    readyTimeoutMs: 90_000,
    apiRetryMs: 5_000,
    warmPoolReplicas,
  });
}

const claimGone = (ns: string, name: string) =>
  kubectl(["get", CLAIMS, name, "-n", ns, "--ignore-not-found", "-o", "name"]).then((r) => r.stdout.trim() === "");
const podCount = (ns: string) => kubectlJson(["get", "pods", "-n", ns]).then((r) => r.items.length as number);
const poolReady = (ns: string) => kubectlJson(["get", POOLS, "default", "-n", ns]).then((p) => (p.status?.readyReplicas ?? 0) as number);

type ModeResult = { first: number; firstCalls: Calls; ready: number[]; calls: Calls[]; adopted: number; release: number[] };

/** One team: a first session (creates namespace, Secret, template, pool; not in the figures), then N sessions. */
async function mode(kubeconfig: string, team: string, warm: number): Promise<ModeResult> {
  const d = driverFor(kubeconfig, warm);
  const ns = `${prefix}${team}`;
  await d.api.ensureAgentSandbox(); // discovery, once per driver: not a per-session cost
  let before = { ...d.api.calls };
  let t = performance.now();
  const h0 = await d.acquire("warmup", team, policy);
  const first = performance.now() - t;
  live.push({ driver: d, h: h0 });
  const firstCalls = diff({ ...d.api.calls }, before);
  log(`${team}: first session (team setup) ${fmtMs(first)}; ${fmtCalls(firstCalls)}`);
  if (warm) await waitFor(async () => (await poolReady(ns)) >= warm, { timeoutMs: 120_000, what: `warm pool ${ns} ready` });

  const ready: number[] = [];
  const release: number[] = [];
  const calls: Calls[] = [];
  let adopted = 0;
  for (let i = 0; i < N; i++) {
    const sessionId = `s${i}`;
    before = { ...d.api.calls };
    t = performance.now();
    const h = await d.acquire(sessionId, team, policy);
    ready.push(performance.now() - t);
    live.push({ driver: d, h });
    const claim = await kubectlJson(["get", CLAIMS, `s-${sessionId}`, "-n", ns]);
    const sbx = await kubectlJson(["get", SANDBOXES, claim.status.sandbox.name, "-n", ns]);
    if (/warm/.test(sbx.metadata.labels?.["agents.x-k8s.io/launch-type"] ?? "")) adopted++;
    t = performance.now();
    await d.release(h);
    release.push(performance.now() - t);
    live.pop();
    calls.push(diff({ ...d.api.calls }, before));
    // Quiesce outside the timings (admin kubectl, not counted): the claim gone, the pods back to
    // the first session's (+ the refilled pool's), so every session starts from the same state.
    await waitFor(async () => (await claimGone(ns, `s-${sessionId}`)) && (await podCount(ns)) <= 1 + warm && (!warm || (await poolReady(ns)) >= warm), {
      timeoutMs: 120_000,
      what: `${ns} back to idle`,
    });
    log(`${team}: session ${i + 1}/${N} ready in ${fmtMs(ready.at(-1)!)} (${sbx.metadata.labels?.["agents.x-k8s.io/launch-type"] ?? "no launch-type label"})`);
  }
  await d.release(h0);
  live.splice(
    live.findIndex((x) => x.h === h0),
    1,
  );
  return { first, firstCalls, ready, calls, adopted, release };
}

async function cleanup(): Promise<void> {
  for (const { driver, h } of live.splice(0)) await driver.release(h).catch(() => {});
  const nss = (await kubectlJson(["get", "namespaces"]).catch(() => ({ items: [] }))).items
    .map((n: any) => n.metadata.name as string)
    .filter((n: string) => n.startsWith(prefix));
  if (nss.length) {
    const r = await kubectl(["delete", "namespace", ...nss, "--wait=true", "--timeout=120s"], { allowFailure: true, timeoutMs: 150_000 });
    log(r.code === 0 ? `deleted namespaces ${nss.join(", ")}` : `deleting namespaces ${nss.join(", ")} failed: ${r.stderr.trim()}`);
  }
  await platform?.cleanup().catch((e) => log(`platform RBAC cleanup: ${(e as Error).message}`));
  await home?.cleanup({ wait: true }).catch((e) => log(`home namespace cleanup: ${(e as Error).message}`));
  if (weStarted && process.env.BENCH_K8S_KEEP_CP !== "1") {
    log("stopping the control plane (controlplane/down.sh)");
    await stopControlPlane();
  }
}

try {
  const up = await kubectl(["get", "--raw", "/readyz"], { allowFailure: true, timeoutMs: 10_000 }).catch(() => ({ code: 1 }));
  if (up.code !== 0) {
    log("control plane not running: starting it (controlplane/up.sh)");
    weStarted = true;
    const t = Date.now();
    await startControlPlane();
    log(`control plane up in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } else log("control plane already running: using it, leaving it running");
  home = await createTestNamespace("kbench-home");
  platform = await applyPlatformRbac(home.name, prefix);
  const sa = `system:serviceaccount:${home.name}:${platform.serviceAccount}`;
  await waitFor(async () => (await kubectl(["auth", "can-i", "create", "namespaces", `--as=${sa}`], { allowFailure: true })).stdout.trim() === "yes", {
    timeoutMs: 30_000,
    what: "RBAC",
  });

  // Just after a control-plane start, kwok can take a while (16 s seen) to begin marking pods
  // Ready. A probe pod, outside the figures, makes sure it does before anything is timed.
  const probeStart = Date.now();
  const homeNs = home.name;
  await kubectl(["run", "kwok-probe", "-n", homeNs, "--image=registry.invalid/probe", "--restart=Never"]);
  await waitFor(
    async () => (await kubectlJson(["get", "pod", "kwok-probe", "-n", homeNs])).status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
    { timeoutMs: 120_000, what: "kwok to mark a probe pod Ready" },
  );
  log(`kwok marked a probe pod Ready after ${((Date.now() - probeStart) / 1000).toFixed(1)} s`);
  await kubectl(["delete", "pod", "kwok-probe", "-n", homeNs, "--wait=false"]);

  const loadBefore = load();
  log(`load ${loadBefore}; ${N} sessions without a warm pool, then ${N} with warmPoolReplicas ${POOL}`);
  const t0 = Date.now();
  const cold = await mode(platform.kubeconfig, "cold", 0);
  const warm = await mode(platform.kubeconfig, "warm", POOL);
  const loadAfter = load();
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${loadAfter}`);

  const sameCalls = (r: ModeResult) => {
    const keys = r.calls.map((c) => fmtCalls(c));
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
    return [...counts].map(([k, n]) => `${k}${counts.size > 1 ? ` (×${n})` : ""}`).join("; ");
  };
  const row = (name: string, r: ModeResult) => {
    const d = dist(r.ready);
    const rel = dist(r.release);
    const tot = dist(r.calls.map(total));
    return `| ${name} | ${d.n} | ${fmtMs(d.p50)} | ${fmtMs(d.p99)} | ${fmtMs(d.max)} | ${r.adopted}/${d.n} | ${fmtMs(rel.p50)} | ${tot.p50 === tot.max ? tot.p50 : `${tot.p50}–${tot.max}`} (${sameCalls(r)}) |`;
  };
  const firstRow = (name: string, r: ModeResult) => `| ${name} | ${fmtMs(r.first)} | ${total(r.firstCalls)} (${fmtCalls(r.firstCalls)}) |`;
  const out = [
    `Command: \`${command}\` (BENCH_K8S_N=${N}, BENCH_K8S_POOL=${POOL})`,
    `Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), Node ${process.version}; control plane ${weStarted ? "started by the bench" : "already running"}`,
    `Load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`,
    "",
    "| Sessions, driver as the platform ServiceAccount | n | acquire → Ready p50 | p99 | max | adopted a warm sandbox | release p50 | API calls per session, acquire + release |",
    "|---|---|---|---|---|---|---|---|",
    row("No warm pool (`warmPoolReplicas: 0`)", cold),
    row(`Warm pool (\`warmPoolReplicas: ${POOL}\`, pool Ready and refilled before each claim)`, warm),
    "",
    "| A team's first session (not in the rows above) | acquire → Ready | API calls (acquire) |",
    "|---|---|---|",
    firstRow("No warm pool", cold),
    firstRow(`Warm pool (${POOL})`, warm),
  ];
  console.log(out.join("\n"));
} catch (err) {
  console.error(`bench:k8s failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
