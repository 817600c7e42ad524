// Per-team limits against the real control plane (kube-apiserver's ResourceQuota, LimitRanger and
// Priority admission, the agent-sandbox controller), the driver running as the platform
// ServiceAccount: each team namespace gets the operator's ResourceQuota and LimitRange; a team at
// its quota gets a clear error at once (the controller's refused pod create, read from the claim)
// instead of a claim that waits for ever, and other teams are not touched; a sandbox larger than
// the LimitRange admits is refused before any API call.
//
// "At once": every driver here has readyTimeoutMs (10 min) far above the test's own timeout, so
// an acquire that waited for readiness instead of failing fails the test by timing out.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { parseSandboxPolicy, SandboxQuotaExceededError } from "../../src/index.ts";
import type { KubernetesDriverOptions } from "../../src/sandbox/k8s/index.ts";
import { applyPlatformRbac, platformMay, claimOf, deleteTeamNamespaces, testDriver, type PlatformIdentity } from "./helpers.ts";

const prefix = `kq${randomBytes(2).toString("hex")}-`;
const policy = parseSandboxPolicy({});
const SANDBOXES = "sandboxes.v1beta1.agents.x-k8s.io";
let home: TestNamespace;
let platform: PlatformIdentity;

beforeAll(async () => {
  await startControlPlane();
  home = await createTestNamespace("kq-home");
  platform = await applyPlatformRbac(home.name, prefix);
  await platformMay(home.name, platform, ["patch", "resourcequotas", "-n", `${prefix}x`]);
}, 120_000);

afterAll(async () => {
  await deleteTeamNamespaces(prefix);
  await platform?.cleanup();
  await home?.cleanup();
}, 120_000);

/** The quota's count of pods, as the API server's admission will next see it. */
const podsUsed = async (ns: string) => (await kubectlJson(["get", "resourcequota", "keel-sandboxes", "-n", ns])).status?.used?.pods;

function driver(extra: Partial<KubernetesDriverOptions> = {}) {
  return testDriver(platform.kubeconfig, prefix, { readyTimeoutMs: 600_000, apiRetryMs: 2_000, ...extra });
}

test("each team namespace gets the configured ResourceQuota and LimitRange; the sandbox pod is counted and runs at keel-sandbox priority", async () => {
  const teamQuota = { pods: 3, cpu: "3", memoryMb: 6144, ephemeralMb: 8192, pvcs: 4, storageMb: 10_240, maxWorkspaceMb: 2048, maxMemoryMb: 2048 };
  const d = driver({ teamQuota });
  const ns = `${prefix}team-v`;
  const h = await d.acquire("sess-v", "team-v", policy);
  const quota = await kubectlJson(["get", "resourcequota", "keel-sandboxes", "-n", ns]);
  expect(quota.spec).toEqual({
    hard: {
      pods: "3",
      "requests.cpu": "3",
      "limits.cpu": "3",
      "requests.memory": "6Gi",
      "limits.memory": "6Gi",
      "requests.ephemeral-storage": "8Gi",
      "limits.ephemeral-storage": "8Gi",
      persistentvolumeclaims: "4",
      "requests.storage": "10Gi",
    },
  });
  const limits = await kubectlJson(["get", "limitrange", "keel-sandboxes", "-n", ns]);
  // (The API server fills a Container entry's default limit in from max, and defaultRequest from
  // that where it is not given: Keel's containers state their own; the next test shows what they
  // are for.)
  expect(limits.spec.limits).toEqual([
    expect.objectContaining({ type: "Container", max: { cpu: "1", memory: "2Gi", "ephemeral-storage": "1536Mi" } }),
    { type: "PersistentVolumeClaim", max: { storage: "2Gi" } },
  ]);
  expect(limits.spec.limits[0].defaultRequest["ephemeral-storage"]).toBe("256Mi");
  // The API server counts the sandbox's pod and workspace against it.
  const used = await waitFor(
    async () => {
      const u = (await kubectlJson(["get", "resourcequota", "keel-sandboxes", "-n", ns])).status?.used;
      return u?.pods === "1" && u?.persistentvolumeclaims === "1" ? u : undefined;
    },
    { what: "the quota's usage" },
  );
  expect(used).toMatchObject({ "limits.cpu": "1", "limits.memory": "1Gi", "requests.storage": "1Gi", "limits.ephemeral-storage": "1536Mi" });
  const pod = (await kubectlJson(["get", "pods", "-n", ns])).items[0];
  expect([pod.spec.priorityClassName, pod.spec.priority, pod.spec.preemptionPolicy]).toEqual(["keel-sandbox", -100, "Never"]);

  // A change of the operator's values reaches the namespace with the next worker (a new driver).
  const d2 = driver({ teamQuota: { ...teamQuota, pods: 5 } });
  const h2 = await d2.acquire("sess-v2", "team-v", policy);
  expect((await kubectlJson(["get", "resourcequota", "keel-sandboxes", "-n", ns])).spec.hard.pods).toBe("5");
  await d.release(h);
  await d2.release(h2);
}, 120_000);

test("a Sandbox made before the quota (its pod template states no ephemeral storage and no PriorityClass) still gets its pod: the LimitRange fills the storage in", async () => {
  const d = driver();
  const ns = `${prefix}team-u`;
  const h = await d.acquire("sess-u", "team-u", policy);
  // The pod such a Sandbox asks for: today's template without what earlier Keels did not write.
  const spec = (await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "default", "-n", ns])).spec.podTemplate.spec;
  delete spec.priorityClassName;
  for (const c of spec.containers) {
    delete c.resources.requests["ephemeral-storage"];
    delete c.resources.limits["ephemeral-storage"];
  }
  spec.volumes = [{ name: "tmp", emptyDir: {} }];
  spec.containers[0].volumeMounts = spec.containers[0].volumeMounts.filter((m: any) => m.name === "tmp");
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "earlier-keel", namespace: ns }, spec };
  const r = await kubectl(["create", "--dry-run=server", "-o", "json", "-f", "-"], { input: JSON.stringify(pod), allowFailure: true });
  expect(r.stderr).toBe("");
  expect(JSON.parse(r.stdout).spec.containers[0].resources).toMatchObject({
    requests: { "ephemeral-storage": "256Mi" },
    limits: { "ephemeral-storage": "1536Mi" },
  });
  await d.release(h);
}, 120_000);

test("a team at its pod quota: acquire fails at once with the quota, what is used and the limit; the refused claim is gone; another team is unaffected; a release makes room", async () => {
  const d = driver({ teamQuota: { pods: 2 } });
  const ns = `${prefix}team-q`;
  const a = await d.acquire("sess-q1", "team-q", policy);
  const b = await d.acquire("sess-q2", "team-q", policy);

  const err = await d.acquire("sess-q3", "team-q", policy).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SandboxQuotaExceededError);
  expect(err).toMatchObject({
    code: "sandbox_quota_exceeded",
    status: 429,
    details: { quota: "keel-sandboxes", namespace: ns, resource: "pods", used: { pods: "2" }, limited: { pods: "2" }, requested: { pods: "1" } },
  });
  expect((err as Error).message).toBe(
    `team team-q is at its sandbox quota, so a new sandbox cannot start (its pod was refused): pods 2 of 2 in use, 1 more asked ` +
      `(ResourceQuota keel-sandboxes in namespace ${ns}). Release sandboxes this team no longer needs ` +
      `(a suspended one frees its pod but keeps its workspace volume), or ask the operator to raise KEEL_SANDBOX_QUOTA_PODS`,
  );
  // Not left to take the next free slot: the claim this acquire made is deleted.
  await waitFor(async () => (await claimOf(ns, "s-sess-q3")) === null, { what: "the refused claim deleted" });

  // Another team (its own namespace and quota) starts as before.
  const other = await d.acquire("sess-o1", "team-o", policy);
  expect((await d.list({ teamId: "team-o" })).map((s) => s.state)).toEqual(["ready"]);

  // Room again: one release, and the same session starts.
  await d.release(a);
  await waitFor(async () => (await podsUsed(ns)) === "1", { what: "the released pod no longer counted" });
  const c = await d.acquire("sess-q3", "team-q", policy);
  expect((await d.list({ teamId: "team-q" })).map((s) => [s.sessionId, s.state]).sort()).toEqual([
    ["sess-q2", "ready"],
    ["sess-q3", "ready"],
  ]);
  await Promise.all([d.release(b), d.release(c), d.release(other)]);
}, 120_000);

test("resuming a suspended sandbox while the team is at its quota: the quota error, and it is suspended again with its workspace kept", async () => {
  const d = driver({ teamQuota: { pods: 1 } });
  const ns = `${prefix}team-r`;
  const first = await d.acquire("sess-r1", "team-r", policy);
  await d.suspend(first);
  const sandbox = (await claimOf(ns, "s-sess-r1")).status.sandbox.name;
  const pvc = (await kubectlJson(["get", "pvc", `workspace-${sandbox}`, "-n", ns])).metadata.uid;
  await waitFor(async () => (await podsUsed(ns)) === "0", { what: "the suspended pod no longer counted" });
  const second = await d.acquire("sess-r2", "team-r", policy);

  await expect(d.acquire("sess-r1", "team-r", policy)).rejects.toMatchObject({
    code: "sandbox_quota_exceeded",
    message: expect.stringContaining("pods 1 of 1 in use, 1 more asked"),
  });
  const claim = await claimOf(ns, "s-sess-r1");
  expect(claim.metadata.uid).toBe(first.sandboxId);
  expect((await kubectlJson(["get", SANDBOXES, sandbox, "-n", ns])).spec.operatingMode).toBe("Suspended");
  expect((await kubectlJson(["get", "pvc", `workspace-${sandbox}`, "-n", ns])).metadata.uid).toBe(pvc);
  expect((await d.list({ teamId: "team-r" })).map((s) => [s.sessionId, s.state]).sort()).toEqual([
    ["sess-r1", "suspended"],
    ["sess-r2", "ready"],
  ]);
  await d.release(second);
  await d.release(first);
}, 120_000);

test("a team at its workspace-volume quota: the refused PVC gives the quota error the same way", async () => {
  const d = driver({ teamQuota: { pvcs: 1 } });
  const a = await d.acquire("sess-p1", "team-p", policy);
  await expect(d.acquire("sess-p2", "team-p", policy)).rejects.toMatchObject({
    code: "sandbox_quota_exceeded",
    message: expect.stringMatching(
      /\(its workspace volume was refused\): persistentvolumeclaims 1 of 1 in use, 1 more asked .*ask the operator to raise KEEL_SANDBOX_QUOTA_PVCS$/,
    ),
  });
  await waitFor(async () => (await claimOf(`${prefix}team-p`, "s-sess-p2")) === null, { what: "the refused claim deleted" });
  await d.release(a);
}, 120_000);

test("a workspace or memory above the LimitRange: 422 before any API call, and the API server's LimitRange agrees", async () => {
  const d = driver({ teamQuota: { maxWorkspaceMb: 2048, maxMemoryMb: 1024 } });
  const ns = `${prefix}team-l`;
  const h = await d.acquire("sess-l1", "team-l", policy);
  const calls = { ...d.api.calls };
  const big = parseSandboxPolicy({ resources: { workspaceMb: 4096 } });
  await expect(d.acquire("sess-l2", "team-l", big)).rejects.toMatchObject({
    status: 422,
    code: "validation_failed",
    message:
      "the sandbox policy asks for a 4096 MB workspace; this installation allows at most 2048 MB per sandbox: lower resources.workspaceMb, or the operator raises KEEL_SANDBOX_MAX_WORKSPACE_MB",
  });
  await expect(d.acquire("sess-l2", "team-l", parseSandboxPolicy({ resources: { memoryMb: 2048 } }))).rejects.toMatchObject({
    status: 422,
    message: expect.stringMatching(/asks for 2048 MB of memory; this installation allows at most 1024 MB per sandbox.*KEEL_SANDBOX_MAX_MEMORY_MB/),
  });
  expect(d.api.calls).toEqual(calls);
  // What the pre-check stands in for: the API server refuses such a PVC in the team namespace.
  const pvc = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "too-big", namespace: ns },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "4096Mi" } } },
  };
  const r = await kubectl(["create", "--dry-run=server", "-f", "-"], { input: JSON.stringify(pvc), allowFailure: true });
  expect(r.stderr).toMatch(/maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 4Gi/);
  await d.release(h);
}, 120_000);
