// The Kubernetes sandbox driver against the real control plane (kube-apiserver with RBAC,
// controller-manager GC, scheduler, kwok, agent-sandbox v1.0.1). The driver runs as the platform
// ServiceAccount from k8s/base/rbac.yaml, so these tests also prove that RBAC is sufficient.
// kwok runs no containers: the data plane is checked by pointing the driver's runtime client at
// a real sandbox runtime server on loopback, started as the pod's container would be: with the start
// token of its template's Secret.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createRuntimeServer } from "@keel/sandbox";
import { egressGrantKey, verifyEgressGrant } from "@keel/sandbox/egress-grant";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { parseSandboxPolicy, reapSandboxes, SandboxUnavailableError } from "../../src/index.ts";
import { RuntimeClient } from "../../src/sandbox/runtime-client.ts";
import { RuntimeTokens, type KubernetesDriverOptions, type RuntimeApi, type RuntimeEndpoint } from "../../src/sandbox/k8s/index.ts";
import { RUNTIME_PORT, WORKER_POD_LABELS } from "../../src/sandbox/k8s/names.ts";
import { createSandboxDriver } from "../../src/sandbox/config.ts";
import type { SandboxDriver } from "../../src/sandbox/driver.ts";
import {
  applyPlatformRbac,
  platformMay,
  claimOf,
  deleteTeamNamespaces,
  lateBoundRuntime,
  loopbackRuntime,
  stopLoopbackRuntimes,
  testDriver,
  TEST_TOKEN_KEY,
  type PlatformIdentity,
} from "./helpers.ts";

const prefix = `kt${randomBytes(2).toString("hex")}-`;
const policy = parseSandboxPolicy({ template: "default", secrets: ["API_KEY"], egress: { allow: ["140.82.112.0/20:443"] } });
let home: TestNamespace;
let platform: PlatformIdentity;

beforeAll(async () => {
  await startControlPlane();
  home = await createTestNamespace("kd-home");
  platform = await applyPlatformRbac(home.name, prefix);
  await platformMay(home.name, platform, ["create", "namespaces"]);
}, 120_000);

afterAll(async () => {
  stopLoopbackRuntimes();
  await deleteTeamNamespaces(prefix);
  await platform?.cleanup();
  await home?.cleanup();
}, 120_000);

/** Real runtime servers on loopback stand in for the pods' containers (by pod IP). */
const endpoints = new Map<string, string>(); // pod IP → loopback runtime
const seen: RuntimeEndpoint[] = [];
const tokensUsed: string[] = [];
function driver(extra: Partial<KubernetesDriverOptions> = {}) {
  return testDriver(platform.kubeconfig, prefix, {
    readyTimeoutMs: 60_000,
    apiRetryMs: 2_000,
    runtimeClient: (e, token) => {
      seen.push(e);
      tokensUsed.push(token);
      // A pod IP without a stand-in runtime is a pod that is gone: a closed loopback port (the
      // pod network does not exist on this machine; never send requests off it).
      return lateBoundRuntime(() => endpoints.get(e.podIP) ?? "http://127.0.0.1:9", token);
    },
    ...extra,
  });
}

test("acquire creates namespace, Secret, template, pool and claim; the controller's pod becomes Ready; exec reaches the runtime with the claim's token; reattach; release garbage-collects", async () => {
  const d = driver();
  const team = "team-a";
  const ns = `${prefix}${team}`;
  const h = await d.acquire("sess-1", team, policy, { API_KEY: "k-123", OTHER: "never-exposed" });
  expect(h).toMatchObject({ teamId: team, sessionId: "sess-1", driver: "kubernetes" });

  const tpl = await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns]);
  expect(tpl.spec.podTemplate.spec.containers[0].image).toBe("registry.invalid/keel:test");
  expect(tpl.spec.podTemplate.spec.containers[0].resources.limits.memory).toBe("1024Mi");
  expect(tpl.spec.networkPolicy.egress).toEqual([{ to: [{ ipBlock: { cidr: "140.82.112.0/20" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
  const secret = await kubectlJson(["get", "secret", "keel-sandbox-secrets-default", "-n", ns]);
  expect(Object.keys(secret.data)).toEqual(["API_KEY"]);
  expect(await kubectlJson(["get", "sandboxwarmpools.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns])).toBeTruthy();
  // The template controller turns the template's policy into a real NetworkPolicy.
  const netpol = await waitFor(async () => (await kubectlJson(["get", "networkpolicies", "-n", ns])).items[0], { what: "NetworkPolicy" });
  expect(netpol.spec.policyTypes).toEqual(expect.arrayContaining(["Egress", "Ingress"]));

  const claim = await claimOf(ns, "s-sess-1");
  expect(claim.metadata.uid).toBe(h.sandboxId);
  expect(claim.spec.lifecycle.shutdownPolicy).toBe("Delete");
  const pods = (await kubectlJson(["get", "pods", "-n", ns])).items;
  expect(pods).toHaveLength(1);
  expect(pods[0].status.conditions.find((c: any) => c.type === "Ready").status).toBe("True");
  expect(claim.status.sandbox.podIPs).toContain(pods[0].status.podIP);
  expect((await d.list({ teamId: team })).map((s) => [s.sessionId, s.state])).toEqual([["sess-1", "ready"]]);

  endpoints.set(pods[0].status.podIP, (await loopbackRuntime(ns, "s-sess-1")).url);
  // A new driver instance (a restarted worker) reattaches to the same claim and, with nothing
  // in memory, finds the pod IP and token from the claim.
  const d2 = driver();
  const h2 = await d2.acquire("sess-1", team, policy, { API_KEY: "k-123" });
  expect(h2.sandboxId).toBe(h.sandboxId);
  expect((await d2.exec(h2, { command: "echo hi" })).stdout).toBe("hi\n");
  const d3 = driver();
  await d3.writeFile(h, "a.txt", "x");
  expect((await d3.readFile(h, "a.txt")).content).toBe("x");
  expect(seen.at(-1)).toMatchObject({ podIP: pods[0].status.podIP, baseUrl: `http://${pods[0].status.podIP}:8080`, namespace: ns, claim: "s-sess-1" });

  await d2.release(h2);
  await waitFor(
    async () => (await claimOf(ns, "s-sess-1")) === null && (await kubectlJson(["get", "pods,sandboxes.v1beta1.agents.x-k8s.io", "-n", ns])).items.length === 0,
    { timeoutMs: 60_000, what: "claim, sandbox and pod deleted" },
  );
  await expect(d2.exec(h2, { command: "true" })).rejects.toThrow(/acquire it again|terminated/);
  expect(await d.list({ teamId: team })).toEqual([]);
  // The next acquire for the session makes a new sandbox.
  const h3 = await d.acquire("sess-1", team, policy, { API_KEY: "k-123" });
  expect(h3.sandboxId).not.toBe(h.sandboxId);
  await d.release(h3);
}, 180_000);

test("a pod deleted under a running sandbox: the refused call waits until the claim names a pod that answers and goes there (the request never left), whatever the claim said when it was read; a claim deleted meanwhile is a clear 'acquire it again'", async () => {
  const team = "team-del";
  const ns = `${prefix}${team}`;
  let rt = "http://127.0.0.1:9";
  // A pod network: an address answers while a Ready, undeleted pod holds it. `down` holds the
  // network down after a deletion until the test has seen a call refused: kwok replaces a pod
  // (often on the same IP) faster than a call can be made, so the window is made, not hoped for.
  let down = false;
  let refused = 0;
  const answers = async (ip: string) =>
    !down &&
    (await kubectlJson(["get", "pods", "-n", ns])).items.some(
      (p: any) => p.status?.podIP === ip && !p.metadata.deletionTimestamp && p.status.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
    );
  const onNetwork = (e: RuntimeEndpoint, token: string) => {
    const c = async () => {
      if (await answers(e.podIP)) return new RuntimeClient({ baseUrl: rt }, token);
      refused++;
      return new RuntimeClient({ baseUrl: "http://127.0.0.1:9" }, token);
    };
    return {
      exec: async (r) => (await c()).exec(r),
      readFile: async (p, o) => (await c()).readFile(p, o),
      writeFile: async (p, x, o) => (await c()).writeFile(p, x, o),
      listFiles: async (p, o) => (await c()).listFiles(p, o),
      health: async (o) => (await c()).health(o),
      setToken: async (t) => (await c()).setToken(t),
    } satisfies RuntimeApi;
  };
  /** Deletes the pod, starts `call` while nothing answers, and brings the network back once it was refused. */
  const acrossDeletion = async <T>(call: () => Promise<T>): Promise<T> => {
    down = true;
    await kubectl(["-n", ns, "delete", "pods", "--all", "--wait=true"]);
    const before = refused;
    const result = call();
    await waitFor(async () => refused > before, { what: "a refused connection" });
    down = false;
    return result;
  };
  const d = driver({ runtimeClient: onNetwork });
  const h = await d.acquire("sess-del", team, policy);
  rt = (await loopbackRuntime(ns, "s-sess-del")).url;
  await d.writeFile(h, "kept.txt", "kept-42");
  // The cached client points at the deleted pod's address.
  expect((await acrossDeletion(() => d.readFile(h, "kept.txt"))).content).toBe("kept-42");
  // A restarted worker whose acquire reads the claim right after the deletion.
  const d2 = driver({ runtimeClient: onNetwork });
  const result = await acrossDeletion(async () => d2.exec(await d2.acquire("sess-del", team, policy), { command: "cat kept.txt" }));
  expect(result.stdout).toBe("kept-42");
  // The claim itself goes while a refused call waits: no endless wait, no silent retry.
  down = true;
  const before = refused;
  const pending = d2.exec(await d2.acquire("sess-del", team, policy), { command: "true" });
  await waitFor(async () => refused > before, { what: "a refused connection" });
  await kubectl(["-n", ns, "delete", "sandboxclaims.v1beta1.extensions.agents.x-k8s.io", "s-sess-del", "--wait=false"]);
  await expect(pending).rejects.toThrow(/acquire it again/);
  down = false;
}, 180_000);

const SANDBOXES = "sandboxes.v1beta1.agents.x-k8s.io";

test("runtime tokens: the pod spec names a Secret, no token; the start token opens only the hand-over, once; each session's pod gets its own token on first contact; a restarted runtime is handed over again; a pod of an earlier release is reached with the token in its spec", async () => {
  const d = driver();
  const team = "team-k";
  const ns = `${prefix}${team}`;
  const derive = new RuntimeTokens(TEST_TOKEN_KEY);
  const a = await d.acquire("sess-ka", team, policy);
  const b = await d.acquire("sess-kb", team, policy);
  const tpl = await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns]);
  const env: { name: string }[] = tpl.spec.podTemplate.spec.containers[0].env;
  expect(env.find((e) => e.name === "KEEL_RUNTIME_START_TOKEN")).toEqual({
    name: "KEEL_RUNTIME_START_TOKEN",
    valueFrom: { secretKeyRef: { name: "keel-runtime-default", key: "start-token" } },
  });
  expect(env.map((e) => e.name)).not.toContain("KEEL_RUNTIME_TOKEN");
  expect(tpl.spec.envVarsInjectionPolicy).toBe("Disallowed");

  const ra = await loopbackRuntime(ns, "s-sess-ka");
  const rb = await loopbackRuntime(ns, "s-sess-kb");
  endpoints.set(ra.claim.status.sandbox.podIPs[0], ra.url);
  endpoints.set(rb.claim.status.sandbox.podIPs[0], rb.url);
  const [ta, tb] = [derive.session(ns, a.sandboxId), derive.session(ns, b.sandboxId)];
  expect(ta).not.toBe(tb);
  // Nothing the API serves outside that Secret holds a token: claims, template, Sandboxes, pods.
  const served = JSON.stringify(
    await kubectlJson([
      "get",
      `sandboxclaims.v1beta1.extensions.agents.x-k8s.io,sandboxtemplates.v1beta1.extensions.agents.x-k8s.io,${SANDBOXES},pods`,
      "-n",
      ns,
    ]),
  );
  for (const t of [ra.startToken, ta, tb]) expect(served).not.toContain(t);

  // Before a session holds the pod, the start token runs no command and reads no file.
  await expect(new RuntimeClient({ baseUrl: ra.url }, ra.startToken).exec({ command: "true" })).rejects.toMatchObject({ status: 403, code: "start_token" });
  await expect(new RuntimeClient({ baseUrl: ra.url }, ra.startToken).listFiles(".")).rejects.toMatchObject({ status: 403 });
  // First contact (this worker for A, another for B) hands each pod its session's token.
  tokensUsed.length = 0;
  expect((await d.exec(a, { command: "echo a > who; cat who" })).stdout).toBe("a\n");
  expect((await driver().exec(b, { command: "echo b" })).stdout).toBe("b\n");
  // (This worker made A's client with A's token at acquire.)
  expect(tokensUsed).toEqual([ra.startToken, tb, rb.startToken]);
  // The start token is spent; A's token does not open B's pod.
  await expect(new RuntimeClient({ baseUrl: ra.url }, ra.startToken).setToken("x".repeat(43))).rejects.toMatchObject({ status: 401 });
  await expect(new RuntimeClient({ baseUrl: rb.url }, ta).exec({ command: "true" })).rejects.toMatchObject({ status: 401 });
  // Another worker derives A's token and goes straight in (a second hand-over would be refused).
  tokensUsed.length = 0;
  expect((await driver().exec(a, { command: "cat who" })).stdout).toBe("a\n");
  expect(tokensUsed).toEqual([ta]);

  // A's runtime restarts in its pod (a container restart keeps pod and IP): it holds only its
  // start token again. The next call through the worker's cached client gets 401, re-reads the
  // claim, hands the pod over again and goes through.
  ra.server.closeAllConnections();
  await new Promise((r) => ra.server.close(r));
  await loopbackRuntime(ns, "s-sess-ka", Number(new URL(ra.url).port));
  expect((await d.exec(a, { command: "echo again" })).stdout).toBe("again\n");

  // A pod of an earlier release: its token was a plain value in the pod spec (here the Sandbox's
  // pod template, as a warm pool's template used to write it). A worker reaches it with that.
  const legacyToken = randomBytes(32).toString("base64url");
  const sandboxName = rb.claim.status.sandbox.name;
  const sbx = await kubectlJson(["get", SANDBOXES, sandboxName, "-n", ns]);
  const containerEnv = [...sbx.spec.podTemplate.spec.containers[0].env, { name: "KEEL_RUNTIME_TOKEN", value: legacyToken }];
  await kubectl([
    "patch",
    SANDBOXES,
    sandboxName,
    "-n",
    ns,
    "--type=json",
    "-p",
    JSON.stringify([{ op: "replace", path: "/spec/podTemplate/spec/containers/0/env", value: containerEnv }]),
  ]);
  const old = createRuntimeServer({
    token: legacyToken,
    workspace: mkdtempSync(path.join(os.tmpdir(), "keel-k8s-legacy-")),
    env: { PATH: "/usr/bin:/bin" },
    limits: {},
  });
  await new Promise<void>((r) => old.listen(0, "127.0.0.1", r));
  try {
    const claim = await waitFor(
      async () => {
        const c = await claimOf(ns, "s-sess-kb");
        return c?.status?.sandbox?.podIPs?.length && c.status.conditions?.find((x: any) => x.type === "Ready")?.status === "True" ? c : undefined;
      },
      { what: "claim B ready after the patch" },
    );
    endpoints.set(claim.status.sandbox.podIPs[0], `http://127.0.0.1:${(old.address() as AddressInfo).port}`);
    tokensUsed.length = 0;
    expect((await driver().exec(b, { command: "echo old" })).stdout).toBe("old\n");
    expect(tokensUsed.at(-1)).toBe(legacyToken);
  } finally {
    old.close();
  }
  await d.release(a);
  await d.release(b);
}, 180_000);

test("host names in the allow-list go through the shared egress proxy: proxy variables from the template's Secret, a grant signed for the team and template, a NetworkPolicy rule to the proxy's pods only; a changed list changes the pod template; an unresolvable proxy is a clear 503", async () => {
  const d = driver({ egressProxy: { host: "127.0.0.1", port: 3128 } });
  const ns = `${prefix}team-x`;
  const tplOf = async () => kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns]);
  const urlOf = async () =>
    new URL(Buffer.from((await kubectlJson(["get", "secret", "keel-runtime-default", "-n", ns])).data["egress-proxy-url"], "base64").toString());
  const first = parseSandboxPolicy({ egress: { allow: ["api.example.com:443", "140.82.112.0/20:443"] } });
  const h = await d.acquire("sess-x", "team-x", first);
  const tpl = await tplOf();
  const env: any[] = tpl.spec.podTemplate.spec.containers[0].env;
  for (const v of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]) {
    expect(env.find((e) => e.name === v)).toEqual({ name: v, valueFrom: { secretKeyRef: { name: "keel-runtime-default", key: "egress-proxy-url" } } });
  }
  expect(env.find((e) => e.name === "NO_PROXY")?.value).toBe("localhost,127.0.0.1,::1");
  const url = await urlOf();
  expect([url.protocol, url.username, url.host]).toEqual(["http:", "keel", "127.0.0.1:3128"]);
  expect(verifyEgressGrant(egressGrantKey(TEST_TOKEN_KEY), decodeURIComponent(url.password))).toEqual({
    team: "team-x",
    template: "default",
    rules: [
      { kind: "host", host: "api.example.com", port: 443 },
      { kind: "cidr", address: "140.82.112.0", prefix: 20, family: "ipv4", port: 443 },
    ],
    internal: [],
  });
  expect(tpl.spec.networkPolicy.egress).toEqual([
    { to: [{ ipBlock: { cidr: "140.82.112.0/20" } }], ports: [{ protocol: "TCP", port: 443 }] },
    {
      to: [
        {
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "keel" } },
          podSelector: { matchLabels: { "app.kubernetes.io/name": "keel", "app.kubernetes.io/component": "egress-proxy" } },
        },
      ],
      ports: [{ protocol: "TCP", port: 3128 }],
    },
  ]);
  // The controller made the NetworkPolicy with that rule (the API server accepted it).
  await waitFor(async () => JSON.stringify((await kubectlJson(["get", "networkpolicies", "-n", ns])).items).includes("egress-proxy"), {
    what: "NetworkPolicy with the proxy rule",
  });
  // Another host in the list: another grant, and a pod template that differs (agent-sandbox
  // replaces warm pods that started with the old grant).
  const digest = tpl.spec.podTemplate.metadata.annotations["keel.dev/egress-grant"];
  const h2 = await d.acquire("sess-x2", "team-x", parseSandboxPolicy({ egress: { allow: ["api.example.com:443", "pypi.org:443", "140.82.112.0/20:443"] } }));
  expect((await tplOf()).spec.podTemplate.metadata.annotations["keel.dev/egress-grant"]).not.toBe(digest);
  expect(verifyEgressGrant(egressGrantKey(TEST_TOKEN_KEY), decodeURIComponent((await urlOf()).password))?.rules).toHaveLength(3);
  // No names: no proxy variables.
  await d.acquire("sess-x3", "team-y", parseSandboxPolicy({ egress: { allow: ["140.82.112.0/20:443"] } }));
  const plain = await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", `${prefix}team-y`]);
  expect(plain.spec.podTemplate.spec.containers[0].env.map((e: any) => e.name)).not.toContain("HTTPS_PROXY");
  // The proxy's name must resolve from the worker.
  const lost = await driver({ egressProxy: { host: "keel-egress.invalid", port: 3128 } })
    .acquire("sess-x4", "team-z", first)
    .catch((e) => e);
  expect(lost).toBeInstanceOf(SandboxUnavailableError);
  expect(lost.message).toMatch(/the egress proxy keel-egress.invalid \(KEEL_SANDBOX_EGRESS_PROXY\) does not resolve from this worker/);
  await d.release(h);
  await d.release(h2);
}, 180_000);

test("suspend deletes the pod and keeps the Sandbox; resume (from a restarted worker) and acquire start it again; the reaper suspends an idle one", async () => {
  const d = driver();
  const ns = `${prefix}team-s`;
  const h = await d.acquire("sess-s", "team-s", policy);
  await d.suspend(h);
  const sandboxName = (await claimOf(ns, "s-sess-s")).status.sandbox.name;
  const sbx = await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", sandboxName, "-n", ns]);
  expect(sbx.spec.operatingMode).toBe("Suspended");
  await waitFor(async () => (await kubectlJson(["get", "pods", "-n", ns])).items.length === 0, { what: "pod deleted on suspend" });
  expect((await d.list({ teamId: "team-s" }))[0]?.state).toBe("suspended");

  await driver().resume(h, policy);
  expect((await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", sandboxName, "-n", ns])).spec.operatingMode).toBe("Running");
  await waitFor(async () => (await kubectlJson(["get", "pods", "-n", ns])).items.length === 1, { what: "pod again" });
  expect((await d.list({ teamId: "team-s" }))[0]?.state).toBe("ready");

  await d.suspend(h);
  const h2 = await driver().acquire("sess-s", "team-s", policy);
  expect(h2.sandboxId).toBe(h.sandboxId);
  expect((await d.list({ teamId: "team-s" }))[0]?.state).toBe("ready");

  // The reaper (every worker runs it) suspends a sandbox idle for longer than its policy allows.
  const idle = await d.acquire("sess-idle", "team-s", { ...policy, idleTimeoutMs: 1 });
  const reaped = await reapSandboxes({ driver: driver(), liveSessions: async (ids) => new Set(ids), now: () => Date.now() + 1_000 });
  expect(reaped.suspended).toEqual([idle.sandboxId]);
  expect((await d.list({ teamId: "team-s" })).map((s) => [s.sessionId, s.state]).sort()).toEqual([
    ["sess-idle", "suspended"],
    ["sess-s", "ready"],
  ]);
  await d.release(idle);
  await d.release(h2);
}, 180_000);

test("TTL: the controller deletes the claim at shutdownTime; orphan sweep releases sandboxes of dead sessions", async () => {
  const d = driver();
  const ns = `${prefix}team-t`;
  const expiring = await d.acquire("sess-ttl", "team-t", { ...policy, ttlMs: 3_000 });
  const expiringSandbox = (await claimOf(ns, "s-sess-ttl")).status.sandbox.name;
  await waitFor(async () => (await claimOf(ns, "s-sess-ttl")) === null, { timeoutMs: 60_000, what: "claim deleted by its lifecycle" });
  await waitFor(
    async () =>
      (await kubectl(["get", "pod,sandboxes.v1beta1.agents.x-k8s.io", expiringSandbox, "-n", ns, "--ignore-not-found", "-o", "name"])).stdout.trim() === "",
    { timeoutMs: 60_000, what: "its Sandbox and pod garbage-collected" },
  );
  expect(await d.list({ teamId: "team-t" })).toEqual([]);
  await expect(d.resume(expiring, policy)).rejects.toThrow(SandboxUnavailableError);
  await expect(d.exec(expiring, { command: "true" })).rejects.toThrow(/the sandbox is terminated; acquire it again/);

  const live = await d.acquire("sess-live", "team-t", policy);
  const orphan = await d.acquire("sess-orphan", "team-t", policy);
  const result = await reapSandboxes({ driver: d, liveSessions: async (ids) => new Set(ids.filter((id) => id === "sess-live")) });
  // The reaper lists every team's sandboxes: one an earlier test released may still be listed
  // while its claim goes (its session is not live either), so only these two are asserted.
  expect(result.orphaned).toContain(orphan.sandboxId);
  expect(result.orphaned).not.toContain(live.sandboxId);
  await waitFor(async () => (await claimOf(ns, "s-sess-orphan")) === null, { what: "orphan claim deleted" });
  expect((await d.list({ teamId: "team-t" })).map((s) => s.sandboxId)).toEqual([live.sandboxId]);
  await d.release(live);
}, 180_000);

test("warm pool: a claim adopts a pre-started sandbox, which gets the session's own token on first contact", async () => {
  const d = driver({ warmPoolReplicas: 1 });
  const ns = `${prefix}team-w`;
  // First acquire creates the pool (and may cold-start); wait until the pool has a ready spare.
  const h0 = await d.acquire("sess-w0", "team-w", policy);
  await waitFor(
    async () => (await kubectlJson(["get", "sandboxwarmpools.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns])).status?.readyReplicas === 1,
    { timeoutMs: 90_000, what: "warm pool ready" },
  );
  const h = await d.acquire("sess-w1", "team-w", policy);
  const sandbox = await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", (await claimOf(ns, "s-sess-w1")).status.sandbox.name, "-n", ns]);
  expect(sandbox.metadata.labels["agents.x-k8s.io/launch-type"] ?? JSON.stringify(sandbox.metadata.labels)).toMatch(/warm/);
  expect((await claimOf(ns, "s-sess-w1")).spec.env).toBeUndefined();
  // The pod was started before the session existed, with the template's start token only.
  const rt = await loopbackRuntime(ns, "s-sess-w1");
  endpoints.set(rt.claim.status.sandbox.podIPs[0], rt.url);
  tokensUsed.length = 0;
  expect((await d.exec(h, { command: "echo warm" })).stdout).toBe("warm\n");
  expect(tokensUsed).toEqual([rt.startToken]);
  await expect(new RuntimeClient({ baseUrl: rt.url }, new RuntimeTokens(TEST_TOKEN_KEY).session(ns, h.sandboxId)).health()).resolves.toMatchObject({
    ok: true,
  });
  await d.release(h);
  await d.release(h0);
}, 180_000);

test("the workspace is a PVC from the template (policy size, configured StorageClass), kept across suspend and resume, deleted with the claim; image pull Secrets are copied into the team namespace", async () => {
  await kubectl([
    "create",
    "secret",
    "docker-registry",
    "keel-registry",
    "-n",
    home.name,
    "--docker-server=registry.example",
    "--docker-username=u",
    "--docker-password=p",
  ]);
  const workers = { namespace: home.name, podLabels: { "app.kubernetes.io/component": "worker" } };
  const d = driver({ imagePullSecrets: ["keel-registry"], storageClassName: "standard", workers });
  const ns = `${prefix}team-p`;
  const h = await d.acquire("sess-p", "team-p", { ...policy, resources: { ...policy.resources, workspaceMb: 2048 } });

  const tpl = await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns]);
  expect(tpl.spec.volumeClaimTemplates).toEqual([
    expect.objectContaining({
      metadata: expect.objectContaining({ name: "workspace" }),
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "2048Mi" } }, storageClassName: "standard" },
    }),
  ]);
  expect(tpl.spec.podTemplate.spec.volumes.map((v: any) => v.name)).toEqual(["tmp"]);
  expect(tpl.spec.podTemplate.spec.imagePullSecrets).toEqual([{ name: "keel-registry" }]);
  const source = await kubectlJson(["get", "secret", "keel-registry", "-n", home.name]);
  const copy = await kubectlJson(["get", "secret", "keel-registry", "-n", ns]);
  expect([copy.type, copy.data]).toEqual([source.type, source.data]);

  // agent-sandbox makes the PVC `workspace-<sandbox>` and mounts it in the pod.
  const sandboxName = (await claimOf(ns, "s-sess-p")).status.sandbox.name;
  const pvc = await waitFor(
    async () => {
      const p = await kubectlJson(["get", "pvc", `workspace-${sandboxName}`, "-n", ns]);
      return p.status.phase === "Bound" ? p : undefined;
    },
    { timeoutMs: 60_000, what: "workspace PVC bound" },
  );
  expect(pvc.spec.resources.requests.storage).toBe("2Gi");
  const podVolumes = async () =>
    (await kubectlJson(["get", "pods", "-n", ns])).items.map(
      (p: any) => p.spec.volumes.find((v: any) => v.name === "workspace")?.persistentVolumeClaim?.claimName,
    );
  expect(await podVolumes()).toEqual([`workspace-${sandboxName}`]);

  // Suspend deletes the pod, not the PVC; resume mounts the same PVC (same uid) in a new pod.
  await d.suspend(h);
  await waitFor(async () => (await kubectlJson(["get", "pods", "-n", ns])).items.length === 0, { what: "pod deleted on suspend" });
  expect((await kubectlJson(["get", "pvc", `workspace-${sandboxName}`, "-n", ns])).metadata.uid).toBe(pvc.metadata.uid);
  await driver({ imagePullSecrets: ["keel-registry"], storageClassName: "standard", workers }).resume(h, {
    ...policy,
    resources: { ...policy.resources, workspaceMb: 2048 },
  });
  await waitFor(async () => (await podVolumes()).length === 1, { what: "pod again" });
  expect(await podVolumes()).toEqual([`workspace-${sandboxName}`]);
  expect((await kubectlJson(["get", "pvc", `workspace-${sandboxName}`, "-n", ns])).metadata.uid).toBe(pvc.metadata.uid);

  // Release: the claim's Sandbox owns the PVC, so the garbage collector deletes it too.
  await d.release(h);
  await waitFor(async () => (await kubectl(["get", "pvc", `workspace-${sandboxName}`, "-n", ns, "--ignore-not-found", "-o", "name"])).stdout.trim() === "", {
    timeoutMs: 60_000,
    what: "PVC deleted with the claim",
  });

  // A configured pull Secret that does not exist fails the acquire with its name, before any claim.
  await kubectl(["delete", "secret", "keel-registry", "-n", home.name]);
  const err = await driver({ imagePullSecrets: ["keel-registry"], workers })
    .acquire("sess-p2", "team-p2", policy)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SandboxUnavailableError);
  expect((err as Error).message).toContain(`the image pull Secret ${home.name}/keel-registry (KEEL_SANDBOX_IMAGE_PULL_SECRETS) does not exist`);
  expect(await claimOf(`${prefix}team-p2`, "s-sess-p2")).toBeNull();
}, 180_000);

test("two templates of one team keep their own Secrets: a second template's secrets do not replace the first one's", async () => {
  const d = driver();
  const ns = `${prefix}team-s`;
  const other = parseSandboxPolicy({ template: "other", secrets: ["OTHER"] });
  const secrets = { API_KEY: "k-1", OTHER: "o-1" };
  const a = await d.acquire("sess-s1", "team-s", policy, secrets);
  const b = await d.acquire("sess-s2", "team-s", other, secrets);
  const keys = async (name: string) => Object.keys((await kubectlJson(["get", "secret", name, "-n", ns])).data ?? {});
  expect(await keys("keel-sandbox-secrets-default")).toEqual(["API_KEY"]);
  expect(await keys("keel-sandbox-secrets-other")).toEqual(["OTHER"]);
  const ref = async (template: string) =>
    (await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", template, "-n", ns])).spec.podTemplate.spec.containers[0].env
      .filter((e: any) => e.valueFrom)
      .map((e: any) => `${e.name}<-${e.valueFrom.secretKeyRef.name}`);
  // Each template's pods also read their start token from a Secret of their own (tokens.ts).
  expect(await ref("default")).toEqual(["KEEL_RUNTIME_START_TOKEN<-keel-runtime-default", "API_KEY<-keel-sandbox-secrets-default"]);
  expect(await ref("other")).toEqual(["KEEL_RUNTIME_START_TOKEN<-keel-runtime-other", "OTHER<-keel-sandbox-secrets-other"]);
  // A secret the team revokes leaves its template's Secret at the next acquire.
  await d.acquire("sess-s3", "team-s", policy, { OTHER: "o-1" });
  expect(await keys("keel-sandbox-secrets-default")).toEqual([]);
  await d.release(a);
  await d.release(b);
}, 120_000);

test("RuntimeClass and dedicated nodes: the operator's default, a team's pick among the offered classes, a class not offered refused before any API call", async () => {
  for (const name of ["keel-test-gvisor", "keel-test-kata"]) {
    await kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name }, handler: "runc" }) });
  }
  const placement = {
    runtimeClass: "keel-test-gvisor",
    runtimeClasses: ["keel-test-kata"],
    nodeSelector: { type: "kwok" },
    tolerations: [{ key: "kwok.x-k8s.io/node", operator: "Exists" as const, effect: "NoSchedule" }],
  };
  const d = driver(placement);
  const ns = `${prefix}team-r`;
  const spec = async (template: string) =>
    (await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", template, "-n", ns])).spec.podTemplate.spec;
  const a = await d.acquire("sess-r1", "team-r", policy);
  expect(await spec("default")).toMatchObject({ runtimeClassName: "keel-test-gvisor", nodeSelector: { type: "kwok" }, tolerations: placement.tolerations });
  const kata = parseSandboxPolicy({ template: "kata", runtimeClass: "keel-test-kata" });
  const b = await d.acquire("sess-r2", "team-r", kata);
  expect((await spec("kata")).runtimeClassName).toBe("keel-test-kata");
  // The pod the controller made runs with it (the API server's RuntimeClass admission accepted it).
  const pods = (await kubectlJson(["get", "pods", "-n", ns])).items.map((p: any) => p.spec.runtimeClassName).sort();
  expect(pods).toEqual(["keel-test-gvisor", "keel-test-kata"]);
  const calls = { ...(d as any).api.calls };
  await expect(d.acquire("sess-r3", "team-r", parseSandboxPolicy({ runtimeClass: "runc-host" }))).rejects.toMatchObject({
    status: 422,
    message: expect.stringMatching(
      /RuntimeClass "runc-host", which this installation does not offer \(offered: keel-test-kata; default: keel-test-gvisor\).*KEEL_SANDBOX_RUNTIME_CLASSES/,
    ),
  });
  expect((d as any).api.calls).toEqual(calls);
  await d.release(a);
  await d.release(b);
  await kubectl(["delete", "runtimeclass", "keel-test-gvisor", "keel-test-kata", "--ignore-not-found"]);
}, 120_000);

test("the workers' namespace is configuration, not `keel`: a driver built from a config naming another namespace writes a template (and the controller a NetworkPolicy) admitting worker pods of that namespace only", async () => {
  // Through the one path the worker takes (createSandboxDriver), with the kubeconfig the default
  // loader reads; the worker in a pod gets the namespace from KEEL_SANDBOX_WORKERS_NAMESPACE.
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = platform.kubeconfig;
  let d: SandboxDriver;
  try {
    d = createSandboxDriver({
      driver: "kubernetes",
      image: "registry.invalid/keel:test",
      namespacePrefix: prefix,
      workersNamespace: "platform-x",
      tokenKey: TEST_TOKEN_KEY,
      inCluster: false,
    });
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
  const ns = `${prefix}team-w`;
  const h = await d.acquire("sess-w", "team-w", policy);
  const expected = [
    {
      from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "platform-x" } }, podSelector: { matchLabels: { ...WORKER_POD_LABELS } } }],
      ports: [{ protocol: "TCP", port: RUNTIME_PORT }],
    },
  ];
  const tpl = await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns]);
  expect(tpl.spec.networkPolicy.ingress).toEqual(expected);
  const netpol = await waitFor(async () => (await kubectlJson(["get", "networkpolicies", "-n", ns])).items[0], { what: "NetworkPolicy" });
  expect(netpol.spec.ingress).toEqual(expected);
  await d.release(h);
}, 120_000);
