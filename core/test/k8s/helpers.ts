// Shared by the k8s tests: the repo's kustomize overlays re-targeted at a throwaway namespace, and
// the platform's real RBAC (k8s/base/rbac.yaml) applied for real there, so tests can run as the
// least-privileged ServiceAccount the worker gets in a cluster.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig, loadAllYaml } from "@kubernetes/client-node";
import { kubeconfigPath, kubectl, kubectlJson, waitFor } from "@keel/controlplane/harness";
import { KubernetesSandboxDriver, type KubernetesDriverOptions, type RuntimeApi, type RuntimeEndpoint } from "../../src/sandbox/k8s/driver.ts";
import { RuntimeClient } from "../../src/sandbox/runtime-client.ts";
import { DEFAULT_TEAM_QUOTA, namespaceObject, quotaObject } from "../../src/sandbox/k8s/objects.ts";
import { createLogger, type Logger } from "../../src/logger.ts";
import { createRuntimeServer } from "@keel/sandbox";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * A kustomization in .tmp/ that takes `k8s/overlays/<overlay>` and moves it into `namespace`,
 * with a suffix on every name (cluster-scoped ClusterRole/Binding must not collide between
 * runs). kustomize rewrites the references (roleRef, binding subjects, serviceAccountName,
 * configMapRef/secretRef) along with the names.
 */
export function retargetedOverlay(overlay: string, namespace: string, suffix: string): { dir: string; cleanup: () => void } {
  const dir = path.join(repoRoot, ".tmp", `k8s-${overlay}-${namespace}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, "kustomization.yaml"),
    [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      `namespace: ${namespace}`,
      `nameSuffix: "-${suffix}"`,
      "resources:",
      `  - ${path.relative(dir, path.join(repoRoot, "k8s/overlays", overlay))}`,
      "",
    ].join("\n"),
  );
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The PriorityClasses of k8s/base/priority.yaml, under their own names (cluster-scoped, the same
 * for every test file on this API server, so never deleted): the driver's sandbox pods name
 * keel-sandbox, and the API server refuses a pod whose class does not exist.
 */
export async function ensurePriorityClasses(): Promise<void> {
  await kubectl(["apply", "--server-side", "--field-manager=keel-tests", "-f", path.join(repoRoot, "k8s/base/priority.yaml")]);
}

export type PlatformIdentity = { serviceAccount: string; kubeconfig: string; cleanup: () => Promise<void> };

/** Waits until the RBAC applyPlatformRbac wrote is live: the platform ServiceAccount may `can` (`kubectl auth can-i` arguments). */
export async function platformMay(namespace: string, platform: PlatformIdentity, can: string[]): Promise<void> {
  const as = `--as=system:serviceaccount:${namespace}:${platform.serviceAccount}`;
  await waitFor(async () => (await kubectl(["auth", "can-i", ...can, as], { allowFailure: true })).stdout.trim() === "yes", {
    timeoutMs: 30_000,
    what: "RBAC",
  });
}

/**
 * Applies the base RBAC (ServiceAccounts, ClusterRole, ClusterRoleBinding) and the admission
 * policy that confines the platform (k8s/base/admission.yaml) for real into `namespace`, and
 * returns a kubeconfig that authenticates as the platform ServiceAccount with a short-lived token
 * (TokenRequest), so a driver test runs with exactly the rights the manifests grant. The policy
 * copy names this ServiceAccount and lets it write in namespaces named `teamPrefix`* (the
 * manifests' keel-team-), so test files sharing one API server do not see each other's copies.
 */
export async function applyPlatformRbac(namespace: string, teamPrefix: string): Promise<PlatformIdentity> {
  const suffix = randomBytes(3).toString("hex");
  const overlay = retargetedOverlay("production", namespace, suffix);
  const rendered = (await kubectl(["kustomize", overlay.dir])).stdout;
  overlay.cleanup();
  const serviceAccount = `keel-platform-${suffix}`;
  const kinds = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"];
  const docs = (loadAllYaml(rendered) as any[]).filter((d) => kinds.includes(d.kind));
  // kustomize's nameSuffix/namespace do not reach a binding's subjects (it does rename a policy binding's policyName).
  for (const d of docs.filter((d) => d.kind.endsWith("RoleBinding"))) d.subjects = [{ kind: "ServiceAccount", name: serviceAccount, namespace }];
  const text = JSON.stringify({ apiVersion: "v1", kind: "List", items: docs })
    .replaceAll("system:serviceaccount:keel:keel-platform", `system:serviceaccount:${namespace}:${serviceAccount}`)
    .replaceAll("'keel-team-'", `'${teamPrefix}'`);
  if (!text.includes(`'${teamPrefix}'`)) throw new Error("k8s/base/admission.yaml no longer names the 'keel-team-' prefix this helper retargets");
  // Cluster-scoped: deleted by cleanup, or here when the set-up itself fails (nothing else would).
  const removeClusterObjects = async () => {
    await kubectl(["delete", "clusterrole,clusterrolebinding", `keel-platform-${suffix}`, "--ignore-not-found"]);
    for (const policy of ["confinement", "quota"])
      await kubectl(["delete", "validatingadmissionpolicy,validatingadmissionpolicybinding", `keel-platform-${policy}-${suffix}`, "--ignore-not-found"]);
  };
  await kubectl(["apply", "--server-side", "-f", "-"], { input: text });
  let kubeconfig: string;
  try {
    await ensurePriorityClasses();
    await untilLive(namespace, serviceAccount, teamPrefix);
    kubeconfig = await tokenKubeconfig(namespace, serviceAccount);
  } catch (err) {
    await removeClusterObjects();
    throw err;
  }
  return {
    serviceAccount,
    kubeconfig,
    cleanup: async () => {
      rmSync(kubeconfig, { force: true });
      await removeClusterObjects();
    },
  };
}

/**
 * The API server takes RBAC, the policies and their bindings in a moment after they are written,
 * each on its own. Live once the team quota Keel writes passes as the ServiceAccount (a dry run in
 * a namespace of the team prefix, made here): RBAC and the quota policy's binding are in.
 */
async function untilLive(namespace: string, serviceAccount: string, teamPrefix: string): Promise<void> {
  const probe = `${teamPrefix}probe-${randomBytes(2).toString("hex")}`;
  await kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify(namespaceObject(probe, "probe")) });
  const as = `--as=system:serviceaccount:${namespace}:${serviceAccount}`;
  try {
    await waitFor(
      async () => {
        const r = await kubectl(["apply", "--server-side", "--field-manager=keel", "--dry-run=server", "-f", "-", as], {
          input: JSON.stringify(quotaObject(probe, "probe", DEFAULT_TEAM_QUOTA)),
          allowFailure: true,
        });
        if (r.code !== 0) throw new Error(r.stderr);
        return true;
      },
      { timeoutMs: 60_000, what: "the platform's RBAC, admission policies and their parameter to take effect" },
    );
  } finally {
    await kubectl(["delete", "namespace", probe, "--wait=false"]);
  }
}

/** A kubeconfig file for the test API server that authenticates with a ServiceAccount token. */
export async function tokenKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
  const token = (await kubectl(["create", "token", serviceAccount, "-n", namespace, "--duration=1h"])).stdout.trim();
  const server = (await kubectl(["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"])).stdout.trim();
  const caData = (await kubectl(["config", "view", "--minify", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}"])).stdout.trim();
  const caFile = (await kubectl(["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority}"])).stdout.trim();
  const file = path.join(repoRoot, ".tmp", `kubeconfig-${namespace}-${serviceAccount}`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server, ...(caData ? { "certificate-authority-data": caData } : { "certificate-authority": caFile }) } }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: "test", context: { cluster: "test", user: serviceAccount, namespace } }],
      "current-context": "test",
    }),
    { mode: 0o600 },
  );
  return file;
}

export { kubeconfigPath };

/** A pino logger whose lines land in `lines`, parsed (tests assert on retries and their backoff). */
export function capturingLogger(level = "warn"): { logger: Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  return { lines, logger: createLogger({ level, destination: { write: (line: string) => void lines.push(JSON.parse(line)) } as never }) };
}

const CLAIMS = "sandboxclaims.v1beta1.extensions.agents.x-k8s.io";
/** The claim, or null. */
export const claimOf = (ns: string, name: string) =>
  kubectl(["get", CLAIMS, name, "-n", ns, "-o", "json"], { allowFailure: true }).then((r) => (r.code === 0 ? JSON.parse(r.stdout) : null));
/** Every claim (any name) labelled with this session. */
export const claimsOfSession = (ns: string, sessionId: string) =>
  kubectl(["get", CLAIMS, "-n", ns, "-l", `keel.dev/session=${sessionId}`, "-o", "json"]).then((r) => JSON.parse(r.stdout).items as any[]);

/** A driver for tests: the kubeconfig file's identity, a test image, the file's namespace prefix. */
/**
 * A runtime client whose base URL is looked up at each call (`baseUrl`): a client the driver made
 * at acquire reaches the loopback runtime standing in for the pod, which can only start once the
 * claim (and its template's start token) exist.
 */
export function lateBoundRuntime(baseUrl: () => string, token: string, opts: { timeoutMs?: number } = {}): RuntimeApi {
  const c = () => new RuntimeClient({ baseUrl: baseUrl() }, token, opts);
  return {
    exec: (r) => c().exec(r),
    readFile: (p, o) => c().readFile(p, o),
    writeFile: (p, x, o) => c().writeFile(p, x, o),
    listFiles: (p, o) => c().listFiles(p, o),
    health: (o) => c().health(o),
    setToken: (t) => c().setToken(t),
  };
}
export type { RuntimeEndpoint };

/** KEEL_SECRETS_KEY of this test file's drivers (the workers of one installation share it). */
export const TEST_TOKEN_KEY = randomBytes(32);

export function testDriver(kubeconfigFile: string, namespacePrefix: string, opts: Partial<KubernetesDriverOptions> = {}): KubernetesSandboxDriver {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigFile);
  return new KubernetesSandboxDriver({ kubeConfig, tokenKey: TEST_TOKEN_KEY, image: "registry.invalid/keel:test", namespacePrefix, ...opts });
}

/** Deletes the team namespaces a test file's drivers made (labelled by Keel, named with its prefix). */
export async function deleteTeamNamespaces(prefix: string): Promise<void> {
  const nss = (await kubectlJson(["get", "namespaces", "-l", "app.kubernetes.io/managed-by=keel"])).items
    .map((n: any) => n.metadata.name)
    .filter((n: string) => n.startsWith(prefix));
  if (nss.length) await kubectl(["delete", "namespace", ...nss, "--wait=false"]);
}

const runtimes: { server: http.Server; workspace: string }[] = [];

/**
 * kwok's pods run nothing, so a real sandbox runtime on loopback stands in for a claim's pod, as
 * the pod's container starts: with the start token its template's env names (read here from that
 * Secret, as the kubelet would), a fresh workspace. Answers its URL, the claim and the start
 * token. `port`: listen there (a runtime restarted in the same pod). Stop them all with
 * stopLoopbackRuntimes() in afterAll.
 */
export async function loopbackRuntime(ns: string, claimName: string, port = 0): Promise<{ url: string; claim: any; startToken: string; server: http.Server }> {
  const claim = await kubectlJson(["get", CLAIMS, claimName, "-n", ns]);
  const template = await kubectlJson(["get", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", claim.spec.warmPoolRef.name, "-n", ns]);
  const ref = template.spec.podTemplate.spec.containers[0].env.find((e: any) => e.name === "KEEL_RUNTIME_START_TOKEN").valueFrom.secretKeyRef;
  const secret = await kubectlJson(["get", "secret", ref.name, "-n", ns]);
  const startToken = Buffer.from(secret.data[ref.key], "base64").toString("utf8");
  const workspace = mkdtempSync(path.join(os.tmpdir(), "keel-k8s-rt-"));
  const server = createRuntimeServer({ startToken, workspace, env: { PATH: "/usr/bin:/bin" }, limits: {} });
  runtimes.push({ server, workspace });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, claim, startToken, server };
}

export function stopLoopbackRuntimes(): void {
  for (const { server, workspace } of runtimes.splice(0)) {
    server.close();
    rmSync(workspace, { recursive: true, force: true });
  }
}
