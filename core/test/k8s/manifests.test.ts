// k8s/: every overlay renders with kustomize and is accepted by the real API server
// (server-side dry run: schema, defaulting, admission), has the shape the issue asks for, and the
// platform ServiceAccount's RBAC grants exactly what the sandbox driver calls.
import { loadAllYaml } from "@kubernetes/client-node";
import { afterAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, startControlPlane, waitFor, type TestNamespace } from "../../../controlplane/harness.ts";
import { applyPlatformRbac, repoRoot, retargetedOverlay, type PlatformIdentity } from "./helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 120_000);

async function namespace(prefix: string): Promise<string> {
  const ns: TestNamespace = await createTestNamespace(prefix);
  cleanups.push(() => ns.cleanup());
  return ns.name;
}

type Obj = { kind: string; metadata: { name: string; namespace?: string }; spec?: any; data?: Record<string, string> };
async function render(dir: string): Promise<Obj[]> {
  const out = (await kubectl(["kustomize", dir])).stdout;
  return loadAllYaml(out) as Obj[];
}
const find = (objs: Obj[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);

for (const overlay of ["kind", "production"]) {
  test(`overlay ${overlay}: kustomize renders it and the API server accepts it (server-side dry run)`, async () => {
    await startControlPlane();
    const objs = await render(`${repoRoot}/k8s/overlays/${overlay}`);
    expect(objs.filter((o) => o.metadata.namespace && o.metadata.namespace !== "keel")).toEqual([]);

    const web = find(objs, "Deployment", "keel-web")!.spec.template.spec;
    expect(web.initContainers[0].args).toEqual(["migrate"]);
    expect(web.containers[0].ports[0].containerPort).toBe(3000);
    expect(web.containers[0].readinessProbe.httpGet.path).toBe("/readyz");
    expect(web.containers[0].livenessProbe.httpGet.path).toBe("/healthz");
    const worker = find(objs, "Deployment", "keel-worker")!.spec;
    expect(worker.replicas).toBeGreaterThanOrEqual(2);
    const drainMs = Number(find(objs, "ConfigMap", "keel-config")!.data!.KEEL_DRAIN_MS);
    expect(worker.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
    expect(worker.template.spec.serviceAccountName).toBe("keel-platform");
    expect(find(objs, "PodDisruptionBudget", "keel-worker")).toBeTruthy();
    expect(find(objs, "Service", "keel-web")).toBeTruthy();
    for (const d of objs.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet")) {
      for (const c of [...(d.spec.template.spec.initContainers ?? []), ...d.spec.template.spec.containers]) {
        expect(c.resources?.requests, `${d.metadata.name}/${c.name} requests`).toBeTruthy();
        expect(c.resources?.limits, `${d.metadata.name}/${c.name} limits`).toBeTruthy();
      }
    }
    if (overlay === "kind") {
      const pg = find(objs, "StatefulSet", "postgres")!;
      expect(pg.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeTruthy();
      expect(find(objs, "Secret", "keel-secrets")).toBeTruthy();
    } else {
      // Production brings its own database: no Postgres, and no Secret in git.
      expect(objs.find((o) => o.kind === "StatefulSet")).toBeUndefined();
      expect(find(objs, "Secret", "keel-secrets")).toBeUndefined();
      expect(web.containers[0].envFrom).toContainEqual({ secretRef: { name: "keel-secrets" } });
    }

    // Server-side dry run needs the target namespace to exist: apply the overlay moved into a
    // fresh namespace (names suffixed so cluster-scoped RBAC cannot collide with anything).
    const ns = await namespace(`kz-${overlay}`);
    const wrapped = retargetedOverlay(overlay, ns, "dry");
    cleanups.push(wrapped.cleanup);
    const res = await kubectl(["apply", "--server-side", "--dry-run=server", "-k", wrapped.dir]);
    expect(res.stdout).toMatch(/deployment.apps\/keel-worker-dry serverside-applied \(server dry run\)/);
    expect(res.stdout).toMatch(/clusterrole.rbac.authorization.k8s.io\/keel-platform-dry serverside-applied/);
  }, 120_000);
}

// Every call core/src/sandbox/k8s/driver.ts makes, by resource.
const NEEDED: [verb: string, resource: string][] = [
  ["get", "namespaces"], ["create", "namespaces"], ["patch", "namespaces"],
  ["create", "secrets"], ["patch", "secrets"],
  ["get", "pods"], ["list", "pods"], ["watch", "pods"],
  ["get", "sandboxtemplates.extensions.agents.x-k8s.io"], ["create", "sandboxtemplates.extensions.agents.x-k8s.io"], ["patch", "sandboxtemplates.extensions.agents.x-k8s.io"],
  ["get", "sandboxwarmpools.extensions.agents.x-k8s.io"], ["create", "sandboxwarmpools.extensions.agents.x-k8s.io"], ["patch", "sandboxwarmpools.extensions.agents.x-k8s.io"],
  ["get", "sandboxclaims.extensions.agents.x-k8s.io"], ["list", "sandboxclaims.extensions.agents.x-k8s.io"], ["watch", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["create", "sandboxclaims.extensions.agents.x-k8s.io"], ["delete", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["get", "sandboxes.agents.x-k8s.io"], ["list", "sandboxes.agents.x-k8s.io"], ["watch", "sandboxes.agents.x-k8s.io"], ["patch", "sandboxes.agents.x-k8s.io"],
];
const FORBIDDEN: [verb: string, resource: string][] = [
  ["get", "secrets"], ["list", "secrets"], ["delete", "secrets"], ["delete", "namespaces"],
  ["create", "pods"], ["delete", "pods"], ["create", "pods/exec"], ["create", "networkpolicies.networking.k8s.io"],
  ["delete", "sandboxtemplates.extensions.agents.x-k8s.io"], ["create", "sandboxes.agents.x-k8s.io"], ["delete", "sandboxes.agents.x-k8s.io"],
  ["list", "nodes"], ["create", "clusterrolebindings.rbac.authorization.k8s.io"], ["create", "rolebindings.rbac.authorization.k8s.io"],
  ["patch", "deployments.apps"], ["create", "customresourcedefinitions.apiextensions.k8s.io"], ["impersonate", "serviceaccounts"],
];

test("RBAC: the platform ServiceAccount can do what the driver needs, and a sample of what it must not", async () => {
  await startControlPlane();
  const ns = await namespace("kz-rbac");
  const platform: PlatformIdentity = await applyPlatformRbac(ns);
  cleanups.push(platform.cleanup);
  const as = `--as=system:serviceaccount:${ns}:${platform.serviceAccount}`;
  // Checked in another namespace than the platform's own: the driver works in per-team namespaces.
  const canI = async ([verb, resource]: [string, string], where = "keel-team-example") =>
    (await kubectl(["auth", "can-i", verb, resource, "-n", where, as], { allowFailure: true })).stdout.trim();
  await waitFor(async () => (await canI(["get", "pods"])) === "yes", { timeoutMs: 30_000, what: "the ClusterRoleBinding to take effect" });
  const answers = async (list: [string, string][]) => Object.fromEntries(await Promise.all(list.map(async (v) => [v.join(" "), await canI(v)])));
  expect(await answers(NEEDED)).toEqual(Object.fromEntries(NEEDED.map((v) => [v.join(" "), "yes"])));
  expect(await answers(FORBIDDEN)).toEqual(Object.fromEntries(FORBIDDEN.map((v) => [v.join(" "), "no"])));
  // The web ServiceAccount gets nothing.
  const web = (await kubectl(["auth", "can-i", "get", "pods", "-n", ns, `--as=system:serviceaccount:${ns}:keel-web-${platform.serviceAccount.split("-").pop()}`], { allowFailure: true })).stdout.trim();
  expect(web).toBe("no");
}, 120_000);
