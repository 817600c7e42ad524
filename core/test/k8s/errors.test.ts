// Bad input, and clusters that cannot serve the driver: invalid names, agent-sandbox missing (a
// real API server without its CRDs, then with some of them), RBAC denied (no rights, bad
// credentials, one right missing), an object the API server refuses. Each is a KeelError with a
// stable code, an HTTP status and a message that says what to fix.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { parseSandboxPolicy, SandboxUnavailableError, ValidationError } from "../../src/index.ts";
import {
  AgentSandboxMissingError,
  KubernetesApiError,
  KubernetesForbiddenError,
  KubernetesSandboxDriver,
  SandboxNameError,
  type KubernetesDriverOptions,
} from "../../src/sandbox/k8s/index.ts";
import { startBareApiServer } from "./bare-apiserver.ts";
import { applyPlatformRbac, claimOf, deleteTeamNamespaces, repoRoot, testDriver, TEST_TOKEN_KEY, tokenKubeconfig, type PlatformIdentity } from "./helpers.ts";
import { kubeconfigWithServer } from "./proxy.ts";

const prefix = `ke${randomBytes(2).toString("hex")}-`;
const policy = parseSandboxPolicy({ template: "default" });
const CRDS = path.join(process.env.KEEL_CP_BIN_DIR ?? path.join(repoRoot, "controlplane/.bin"), "share/agent-sandbox-crds");
let home: TestNamespace;
let platform: PlatformIdentity;
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  await startControlPlane();
  home = await createTestNamespace("ke-home");
  platform = await applyPlatformRbac(home.name, prefix);
}, 120_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await deleteTeamNamespaces(prefix);
  await platform?.cleanup();
  await home?.cleanup();
}, 120_000);

function driver(kubeconfig: string, extra: Partial<KubernetesDriverOptions> = {}) {
  return testDriver(kubeconfig, prefix, { readyTimeoutMs: 30_000, apiRetryMs: 2_000, ...extra });
}

test("invalid names and a hostname in the egress allow-list fail with 422 before any API call", async () => {
  const d = driver(platform.kubeconfig);
  const cases: [string, string, RegExp][] = [
    ["Sess_1", "team-a", /^sessionId "Sess_1" cannot name a Kubernetes object: use 1–61 lowercase letters, digits or '-'/],
    ["s", "Team A", /^teamId "Team A" cannot name a Kubernetes object/],
    ["s", "t".repeat(60), /^teamId "t{60}" cannot name a Kubernetes object: use 1–56 lowercase/],
    ["-s", "team-a", /^sessionId "-s" cannot name/],
    ["", "team-a", /^sessionId "" cannot name/],
  ];
  for (const [session, team, message] of cases) {
    const err = await d.acquire(session, team, policy).catch((e) => e);
    expect(err).toBeInstanceOf(SandboxNameError);
    expect(err).toMatchObject({ code: "sandbox_invalid_name", status: 422 });
    expect(err.message).toMatch(message);
  }
  const egress = await d.acquire("s", "team-h", parseSandboxPolicy({ egress: { allow: ["api.example.com"] } })).catch((e) => e);
  expect(egress).toBeInstanceOf(ValidationError);
  expect(egress).toMatchObject({ code: "validation_failed", status: 422, details: { entry: "api.example.com" } });
  expect(egress.message).toMatch(/no egress proxy \(KEEL_SANDBOX_EGRESS_PROXY/);
  expect(d.api.calls).toEqual({});
  // A namespace prefix that cannot start a namespace name is refused when the driver is made.
  expect(() => driver(platform.kubeconfig, { namespacePrefix: "Keel_" })).toThrow(/namespacePrefix "Keel_" cannot start a Kubernetes namespace name/);
});

test("agent-sandbox missing from a real API server: none, half, then all of its CRDs; and a CRD deleted while the driver runs", async () => {
  const bare = await startBareApiServer();
  cleanups.push(bare.stop);
  const applyCrds = async (files: string[]) => {
    await bare.kubectl(["apply", "--server-side", ...files.flatMap((f) => ["-f", path.join(CRDS, f)])]);
    const names = files.map((f) => `${f.split("_")[1]!.replace(/\.yaml$/, "")}.${f.split("_")[0]}`);
    await waitFor(
      async () => {
        const crds = await Promise.all(names.map((n) => bare.kubectl(["get", "crd", n, "-o", "json"]).then((r) => JSON.parse(r.stdout))));
        return crds.every((c) => c.status?.conditions?.some((x: any) => x.type === "Established" && x.status === "True"));
      },
      { what: `CRDs established: ${names.join(", ")}` },
    );
  };

  const none = driver(bare.kubeconfig);
  const err = await none.acquire("s", "team-m", policy).catch((e) => e);
  expect(err).toBeInstanceOf(AgentSandboxMissingError);
  expect(err).toMatchObject({
    code: "sandbox_k8s_not_installed",
    status: 503,
    details: { missing: ["extensions.agents.x-k8s.io/v1beta1", "agents.x-k8s.io/v1beta1"] },
  });
  expect(err.message).toBe(
    "agent-sandbox is not installed in this cluster: the API server does not serve extensions.agents.x-k8s.io/v1beta1 and agents.x-k8s.io/v1beta1. Install agent-sandbox v1.0.1 with its extensions (kubectl apply --server-side -k k8s/agent-sandbox/v1.0.1: k8s/README.md), then retry",
  );
  expect(await none.health()).toEqual({ ok: false, driver: "kubernetes", message: err.message });

  // Half an install: the extensions group without its template kind, and no core group.
  await applyCrds(["extensions.agents.x-k8s.io_sandboxclaims.yaml", "extensions.agents.x-k8s.io_sandboxwarmpools.yaml"]);
  const half = await driver(bare.kubeconfig)
    .acquire("s", "team-m", policy)
    .catch((e) => e);
  expect(half).toBeInstanceOf(AgentSandboxMissingError);
  expect(half.details.missing).toEqual(["extensions.agents.x-k8s.io/v1beta1 (SandboxTemplate)", "agents.x-k8s.io/v1beta1"]);

  // Everything installed, but no controller runs against this API server: the wait says so.
  await applyCrds(["extensions.agents.x-k8s.io_sandboxtemplates.yaml", "agents.x-k8s.io_sandboxes.yaml"]);
  const all = driver(bare.kubeconfig, { readyTimeoutMs: 1_500 });
  expect((await all.health()).ok).toBe(true);
  const stuck = await all.acquire("s", "team-m", policy).catch((e) => e);
  expect(stuck).toBeInstanceOf(SandboxUnavailableError);
  expect(stuck.message).toMatch(
    /^timed out after 1500 ms waiting for sandbox claim ke.*-team-m\/s-s to be Ready \(it has no status yet: is the agent-sandbox controller running\?\)$/,
  );

  // The claim CRD deleted while this driver runs (its checks and discovery are cached).
  await bare.kubectl(["delete", "crd", "sandboxclaims.extensions.agents.x-k8s.io", "--wait=true", "--timeout=60s"]);
  const gone = await all.acquire("s2", "team-m", policy).catch((e) => e);
  expect(gone).toBeInstanceOf(AgentSandboxMissingError);
  expect(gone.message).toMatch(
    /^agent-sandbox is not installed in this cluster: the API server does not serve sandboxclaims \(get in namespace ke.*-team-m: .*\)\. Install agent-sandbox v1\.0\.1/,
  );
  // …and the next check looks again instead of trusting what it saw before.
  expect((await all.health()).message).toMatch(/does not serve extensions\.agents\.x-k8s\.io\/v1beta1 \(SandboxClaim\)/);
}, 120_000);

test("RBAC denied: no rights, credentials not accepted, and one right missing each name the verb, resource and fix", async () => {
  await kubectl(["create", "serviceaccount", "nobody", "-n", home.name]);
  const nobodyFile = await tokenKubeconfig(home.name, "nobody");
  const nobody = driver(nobodyFile);
  rmSync(nobodyFile);
  const err = await nobody.acquire("s", "team-r", policy).catch((e) => e);
  expect(err).toBeInstanceOf(KubernetesForbiddenError);
  expect(err).toMatchObject({
    code: "sandbox_k8s_forbidden",
    status: 503,
    details: { verb: "get", resource: "sandboxtemplates", namespace: `${prefix}team-r`, status: 403 },
  });
  expect(err.message).toMatch(
    new RegExp(
      `^the Kubernetes API refused to get sandboxtemplates in namespace ${prefix}team-r \\(403: .*system:serviceaccount:${home.name}:nobody.* cannot get resource "sandboxtemplates".*\\): bind the ServiceAccount this process runs as to the ClusterRole keel-platform \\(k8s/base/rbac\\.yaml\\)$`,
    ),
  );
  expect((await nobody.health()).ok).toBe(false);
  expect((await kubectl(["get", "namespace", `${prefix}team-r`], { allowFailure: true })).code).not.toBe(0);

  const badFile = kubeconfigWithServer(
    platform.kubeconfig,
    (await kubectl(["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"])).stdout.trim(),
    path.join(repoRoot, ".tmp", `kubeconfig-bad-${home.name}`),
  );
  const bad = new KubeConfig();
  bad.loadFromFile(badFile);
  rmSync(badFile);
  bad.users[0] = { ...bad.users[0]!, token: "not-a-token" };
  const unauthenticated = await new KubernetesSandboxDriver({ kubeConfig: bad, tokenKey: TEST_TOKEN_KEY, image: "x", namespacePrefix: prefix })
    .acquire("s", "team-r", policy)
    .catch((e) => e);
  expect(unauthenticated).toBeInstanceOf(KubernetesForbiddenError);
  expect(unauthenticated.message).toMatch(
    /^the Kubernetes API refused to discover extensions\.agents\.x-k8s\.io\/v1beta1 \(401: the credentials are not accepted\)/,
  );

  // The platform ClusterRole minus one verb: everything up to the claim works, the claim's create is refused.
  const role = await kubectlJson(["get", "clusterrole", platform.serviceAccount]);
  const partial = `keel-partial-${randomBytes(3).toString("hex")}`;
  const rules = role.rules.map((r: any) => (r.resources.includes("sandboxclaims") ? { ...r, verbs: r.verbs.filter((v: string) => v !== "create") } : r));
  await kubectl(["create", "serviceaccount", partial, "-n", home.name]);
  await kubectl(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: partial }, rules },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: partial },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: partial },
          subjects: [{ kind: "ServiceAccount", name: partial, namespace: home.name }],
        },
      ],
    }),
  });
  cleanups.push(() => kubectl(["delete", "clusterrole,clusterrolebinding", partial, "--ignore-not-found"]));
  await waitFor(
    async () =>
      (
        await kubectl(["auth", "can-i", "get", "sandboxclaims.extensions.agents.x-k8s.io", `--as=system:serviceaccount:${home.name}:${partial}`], {
          allowFailure: true,
        })
      ).stdout.trim() === "yes",
    { timeoutMs: 30_000, what: "RBAC" },
  );
  const partialFile = await tokenKubeconfig(home.name, partial);
  const noCreate = driver(partialFile);
  rmSync(partialFile);
  const refused = await noCreate.acquire("s", "team-p", policy).catch((e) => e);
  expect(refused).toBeInstanceOf(KubernetesForbiddenError);
  expect(refused).toMatchObject({ details: { verb: "create", resource: "sandboxclaims", namespace: `${prefix}team-p`, status: 403 } });
  expect(refused.message).toMatch(
    /^the Kubernetes API refused to create sandboxclaims in namespace ke.*-team-p \(403: .*cannot create resource "sandboxclaims"/,
  );
  expect(await claimOf(`${prefix}team-p`, "s-s")).toBeNull();
});

test("an object the API server refuses (a CPU limit that is not a quantity): KubernetesApiError with the server's reason, not retried", async () => {
  const d = driver(platform.kubeconfig, { cpu: "lots" });
  const err = await d.acquire("s", "team-q", policy).catch((e) => e);
  expect(err).toBeInstanceOf(KubernetesApiError);
  expect(err).toMatchObject({
    code: "sandbox_k8s_rejected",
    status: 502,
    details: { verb: "patch", resource: "sandboxtemplates", name: "default", status: 422 },
  });
  expect(err.message).toMatch(/^the Kubernetes API refused to patch sandboxtemplates default in namespace ke.*-team-q \(422\): .*resources\.limits\.cpu.*lots/);
  expect(d.api.calls.patch).toBe(4); // namespace, Secret, start-token Secret, template: the refused apply was not repeated
});
