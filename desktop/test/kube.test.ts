// Contexts and per-context checks against the real control plane (controlplane/up.sh).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { freePort } from "@keel/cli/embedded-postgres";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { kubeconfigPath, kubectl, startControlPlane } from "./control-plane.ts";
import { contextStatus, listContexts, loadKubeconfig } from "../src/main/kube.ts";
import { ipcClient } from "./helpers.ts";

let dir: string;
let good: string;
let closedPort: number;
let caPath: string;
const server = () => `https://127.0.0.1:${process.env.KEEL_CP_API_PORT}`;

const tokenKubeconfig = (o: { cluster: string; server: string; ca?: string; user: string; token: string; context: string; current?: string }) => `apiVersion: v1
kind: Config
clusters:
- name: ${o.cluster}
  cluster:
    server: ${o.server}
${o.ca ? `    certificate-authority: ${o.ca}` : "    insecure-skip-tls-verify: true"}
users:
- name: ${o.user}
  user:
    token: ${o.token}
contexts:
- name: ${o.context}
  context:
    cluster: ${o.cluster}
    user: ${o.user}
    namespace: team-a
${o.current ? `current-context: ${o.current}` : ""}
`;

async function writeConfig(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

/** Calls a channel the way the renderer will: through the IPC wrapper. */
const ipc = (kubeconfig: string) => ipcClient(kubeconfig);

beforeAll(async () => {
  good = await startControlPlane();
  dir = await mkdtemp(path.join(os.tmpdir(), "keel-desktop-kube-"));
  closedPort = await freePort();
  caPath = path.join(process.env.KEEL_CP_STATE_DIR!, "pki", "ca.crt");
}, 600_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("KUBECONFIG with two files (and a missing one) lists both files' contexts; the first file's current-context wins", async () => {
  const down = await writeConfig(
    "down.yaml",
    tokenKubeconfig({ cluster: "down", server: `https://127.0.0.1:${closedPort}`, user: "down-user", token: "x", context: "down", current: "down" }),
  );
  const loaded = loadKubeconfig({ env: { KUBECONFIG: [good, down, path.join(dir, "missing.yaml")].join(path.delimiter) } });
  const list = listContexts(loaded);
  expect(list.files).toEqual([good, down]);
  expect(list.current).toBe("keel-test");
  expect(list.contexts.map((c) => c.name)).toEqual(["keel-test", "down"]);
  expect(list.contexts[1]).toMatchObject({ cluster: "down", user: "down-user", namespace: "team-a", server: `https://127.0.0.1:${closedPort}` });

  // Reversed order: kubectl's precedence, not client-node's (last current-context wins there).
  expect(listContexts(loadKubeconfig({ env: { KUBECONFIG: [down, good].join(path.delimiter) } })).current).toBe("down");

  const [ok, unreachable] = await Promise.all([contextStatus(loaded, "keel-test"), contextStatus(loaded, "down")]);
  expect(ok.connection).toEqual({ ok: true, version: expect.stringMatching(/^v1\.\d+\.\d+/) });
  expect(ok.agentSandbox).toEqual({ ok: true });
  expect(unreachable.connection.ok).toBe(false);
  expect(unreachable.connection).toMatchObject({
    code: "unreachable",
    message: expect.stringMatching(
      new RegExp(`cannot reach the API server of context "down" at https://127.0.0.1:${closedPort}: .*ECONNREFUSED.*Check that the cluster is running`),
    ),
  });
  expect(unreachable.agentSandbox).toBeNull();
  expect(unreachable.keel).toBeNull();
});

test("~/.kube/config is read when KUBECONFIG is unset", async () => {
  const home = await mkdtemp(path.join(dir, "home-"));
  await kubectl(["config", "view", "--raw", "--minify"]).then(async (r) => {
    await (await import("node:fs/promises")).mkdir(path.join(home, ".kube"));
    await writeFile(path.join(home, ".kube", "config"), r.stdout);
  });
  const list = listContexts(loadKubeconfig({ env: {}, home }));
  expect(list.current).toBe("keel-test");
  expect(list.files).toEqual([path.join(home, ".kube", "config")]);
});

test("wrong credentials: a clear 401 message naming the context, server and user", async () => {
  const bad = await writeConfig(
    "bad.yaml",
    tokenKubeconfig({ cluster: "keel-test", server: server(), ca: caPath, user: "stale", token: "expired-or-made-up", context: "stale", current: "stale" }),
  );
  const status = await contextStatus(loadKubeconfig({ env: { KUBECONFIG: bad } }), "stale");
  expect(status.connection).toEqual({
    ok: false,
    code: "unauthorized",
    message: expect.stringMatching(
      /context "stale" \(https:\/\/127\.0\.0\.1:\d+\) rejected the credentials of user "stale" \(401 Unauthorized\): the token or client certificate is expired or invalid/,
    ),
  });
  // The same through IPC, for a call that is not a status check.
  const res = await ipc(bad)("sandboxes:list", { context: "stale" });
  expect(res).toEqual({ ok: false, error: { name: "KubeError", code: "unauthorized", message: expect.stringContaining("401 Unauthorized") } });
});

test("forbidden: valid credentials without RBAC get a 403 message that says what was refused", async () => {
  await kubectl(["create", "serviceaccount", "desktop-nobody", "-n", "default"], { allowFailure: true });
  const token = (await kubectl(["create", "token", "desktop-nobody", "-n", "default"])).stdout.trim();
  const file = await writeConfig(
    "nobody.yaml",
    tokenKubeconfig({ cluster: "keel-test", server: server(), ca: caPath, user: "nobody", token, context: "nobody", current: "nobody" }),
  );
  const status = await contextStatus(loadKubeconfig({ env: { KUBECONFIG: file } }), "nobody");
  expect(status.connection.ok).toBe(true); // /version and discovery are public to authenticated users
  expect(status.agentSandbox).toEqual({ ok: true });
  expect(status.keel).toMatchObject({
    ok: false,
    code: "forbidden",
    message: expect.stringMatching(/user "nobody" of context "nobody" may not read namespace keel \(403 Forbidden: .*\)\. Ask a cluster admin/),
  });

  const res = await ipc(file)("sandboxes:list", { context: "nobody" });
  expect(res).toMatchObject({
    ok: false,
    error: { code: "forbidden", message: expect.stringMatching(/may not list sandbox\w+ in all namespaces \(403 Forbidden/) },
  });
});

test("Keel install: missing namespace, then namespace without keel-web, then installed", async () => {
  const loaded = loadKubeconfig({ env: { KUBECONFIG: good } });
  await kubectl(["delete", "namespace", "keel", "--ignore-not-found", "--wait=true"], { timeoutMs: 120_000 });
  expect((await contextStatus(loaded, "keel-test")).keel).toEqual({
    ok: false,
    code: "keel_missing",
    message:
      'Keel is not installed in context "keel-test": there is no namespace "keel". Install Keel with kubectl apply --server-side -k k8s/overlays/<kind|production> (or kind/up.sh for a local cluster)',
  });
  await kubectl(["create", "namespace", "keel"]);
  try {
    expect((await contextStatus(loaded, "keel-test")).keel).toMatchObject({
      ok: false,
      code: "keel_missing",
      message: expect.stringContaining('namespace "keel" has no Deployment "keel-web"'),
    });
    await kubectl(["create", "deployment", "keel-web", "-n", "keel", "--image=registry.invalid/keel:test"]);
    expect((await contextStatus(loaded, "keel-test")).keel).toEqual({ ok: true });
  } finally {
    await kubectl(["delete", "namespace", "keel", "--wait=false"]);
  }
});

test("IPC wrapper: unknown context and invalid arguments come back as error results, not throws", async () => {
  const call = ipc(good);
  expect(await call("kube:contexts:list")).toMatchObject({ ok: true, value: { current: "keel-test" } });
  expect(await call("kube:context:status", { context: "nope" })).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "context_not_found",
      message: 'no context "nope" in your kubeconfig (contexts: keel-test). Check KUBECONFIG or run kubectl config get-contexts',
    },
  });
  const bad = await call("sandboxes:warmpool:scale", { context: "keel-test", namespace: "Not_A_Name", name: "p", replicas: -1 });
  expect(bad).toMatchObject({
    ok: false,
    error: { name: "ValidationError", code: "invalid_input", message: expect.stringMatching(/0\.namespace: must be a DNS label.*0\.replicas/) },
  });
  // A malformed kubeconfig file: the message names the file.
  const broken = await writeConfig("broken.yaml", "clusters: [ {");
  expect(await ipc(broken)("kube:contexts:list")).toMatchObject({ ok: false, error: { code: "kubeconfig_invalid", message: expect.stringContaining(broken) } });
  expect(await readFile(good, "utf8")).toContain("keel-test"); // untouched
});
