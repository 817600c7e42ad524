// Port-forward to Keel's web Service through the Kubernetes API. Against the real control plane:
// the Service → Ready pod → named targetPort resolution, RBAC on pods/portforward, and the API
// server's own answer when it cannot reach the pod's node (kwok pods run no containers and the
// simulated node has no kubelet, so no byte can flow there). The data path (local port →
// client-node PortForward WebSocket → pod port → back) against a loopback stand-in API server that
// speaks the port-forward protocol (test/fixtures/portforward-apiserver.ts).
import http from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, startControlPlane, waitFor, type TestNamespace } from "./control-plane.ts";
import { startPortForwardApi, type StandInApi } from "./fixtures/portforward-apiserver.ts";
import { ipcClient } from "./helpers.ts";
import { loadKubeconfig } from "../src/main/kube.ts";
import { createMainServices, type MainServices } from "../src/main/ipc.ts";
import { resolveServiceTarget } from "../src/main/portforward.ts";
import type { PortForwardStatus } from "../src/shared/contract.ts";

const context = "keel-test";
let ns: TestNamespace;
let dir: string;
let kubeconfig: string;
const services: MainServices[] = [];
const statuses: PortForwardStatus[] = [];

/** GET on a fresh connection (fetch would reuse a kept-alive one, whose WebSocket is already open). */
function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = "";
        res
          .setEncoding("utf8")
          .on("data", (d: string) => (body += d))
          .on("end", () => resolve(body))
          .on("error", reject);
      })
      .on("error", reject);
  });
}

function ipc(file: string) {
  const s = createMainServices({ emit: (name, payload) => name === "keel:portforward:status" && statuses.push(payload as PortForwardStatus) });
  services.push(s);
  return { s, call: ipcClient(file, s) };
}

beforeAll(async () => {
  kubeconfig = await startControlPlane();
  dir = await mkdtemp(path.join(os.tmpdir(), "keel-desktop-pf-"));
  ns = await createTestNamespace("pf");
  await kubectl(["apply", "-n", ns.name, "-f", "-"], {
    input: `apiVersion: v1
kind: Pod
metadata:
  name: keel-web-0
  labels: { app: keel-web }
spec:
  containers:
  - name: web
    image: registry.invalid/keel:test
    ports: [{ name: http, containerPort: 3000 }]
---
apiVersion: v1
kind: Service
metadata:
  name: keel-web
spec:
  selector: { app: keel-web }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: v1
kind: Service
metadata:
  name: empty
spec:
  selector: { app: nothing-here }
  ports: [{ port: 80 }]
`,
  });
  await waitFor(
    async () =>
      (await kubectl(["get", "pod", "keel-web-0", "-n", ns.name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"])).stdout === "True",
    { timeoutMs: 90_000, what: "the web pod Ready (kwok)" },
  );
}, 600_000);

afterAll(async () => {
  for (const s of services) await s.dispose();
  await ns?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the Service resolves to its Ready pod and the named targetPort; the API server's refusal to reach the node is a clear error", async () => {
  const kc = loadKubeconfig({ env: { KUBECONFIG: kubeconfig } }).kc;
  expect(await resolveServiceTarget(kc, { namespace: ns.name, service: "keel-web", port: 80 })).toEqual({ pod: "keel-web-0", targetPort: 3000 });

  const { s, call } = ipc(kubeconfig);
  const r = await call("keel:portforward:start", { context, namespace: ns.name, port: 80 });
  // The API server authorized the forward to keel-web-0:3000 and then could not dial the node's
  // kubelet (kwok's node has none): its own words come through.
  expect(r).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "unreachable",
      message: expect.stringMatching(
        new RegExp(
          `^the API server of context "keel-test" could not open a port-forward to pod ${ns.name}/keel-web-0 port 3000 \\(HTTP 500: .*error dialing backend: dial tcp 127\\.0\\.0\\.1:10250: connect: connection refused\\)\\. The pod's node must accept`,
        ),
      ),
    },
  });
  expect(s.forwards.size).toBe(0); // nothing left listening
});

test("RBAC: without create on pods/portforward the forward is refused by name", async () => {
  await kubectl(["create", "serviceaccount", "pf-reader", "-n", ns.name]);
  await kubectl(["create", "role", "pf-reader", "-n", ns.name, "--verb=get,list", "--resource=services,pods"]);
  await kubectl(["create", "rolebinding", "pf-reader", "-n", ns.name, "--role=pf-reader", `--serviceaccount=${ns.name}:pf-reader`]);
  const token = (await kubectl(["create", "token", "pf-reader", "-n", ns.name])).stdout.trim();
  const file = path.join(dir, "reader.yaml");
  await writeFile(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:${process.env.KEEL_CP_API_PORT}", certificate-authority: "${path.join(process.env.KEEL_CP_STATE_DIR!, "pki", "ca.crt")}" } }]
users: [{ name: reader, user: { token: "${token}" } }]
contexts: [{ name: reader, context: { cluster: c, user: reader } }]
current-context: reader
`,
  );
  const r = await ipc(file).call("keel:portforward:start", { context: "reader", namespace: ns.name, port: 80 });
  expect(r).toMatchObject({
    ok: false,
    error: {
      code: "forbidden",
      message: expect.stringMatching(
        new RegExp(
          `^user "reader" of context "reader" may not port-forward to pod ${ns.name}/keel-web-0 port 3000 \\(403 Forbidden: .*"pods/portforward".*\\)\\. Ask a cluster admin for a Role that allows create on pods/portforward$`,
        ),
      ),
    },
  });
});

test("Keel not installed, no Ready pod, no such port, bad input, wrong context", async () => {
  const { call } = ipc(kubeconfig);
  expect(await call("keel:portforward:start", { context, namespace: "default" })).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "keel_missing",
      message:
        'there is no Service default/keel-web in context "keel-test": Keel is not installed there (k8s/overlays/<kind|production>, or kind/up.sh for a local cluster)',
    },
  });
  expect(await call("keel:portforward:start", { context, namespace: ns.name, service: "empty", port: 80 })).toMatchObject({
    ok: false,
    error: {
      code: "not_found",
      message: `no Ready pod behind Service ${ns.name}/empty (0 pods match its selector): wait for the rollout, e.g. kubectl -n ${ns.name} rollout status deployment/empty`,
    },
  });
  expect(await call("keel:portforward:start", { context, namespace: ns.name, port: 3000 })).toMatchObject({
    ok: false,
    error: { code: "not_found", message: `Service ${ns.name}/keel-web has no port 3000 (its ports: 80)` },
  });
  expect(await call("keel:portforward:start", { context, localPort: 70000 })).toMatchObject({
    ok: false,
    error: { code: "invalid_input", message: expect.stringContaining("0.localPort") },
  });
  expect(await call("keel:portforward:start", { context: "nope" })).toMatchObject({ ok: false, error: { code: "context_not_found" } });
});

test("data path (stand-in API server): HTTP through the local base URL reaches the pod's port; refusals carry the server's message; stop closes the port", async () => {
  // The "pod": a plain HTTP server, as Keel's web would answer.
  const web = http.createServer((req, res) => res.end(`hello from the pod: ${req.method} ${req.url}`));
  await new Promise<void>((r) => web.listen(0, "127.0.0.1", r));
  let api: StandInApi | undefined;
  try {
    api = await startPortForwardApi({
      namespace: "keel",
      service: "keel-web",
      pod: "keel-web-7d9f-abcde",
      port: 3000,
      target: { host: "127.0.0.1", port: (web.address() as net.AddressInfo).port },
    });
    const file = path.join(dir, "standin.yaml");
    await writeFile(
      file,
      `apiVersion: v1
kind: Config
# client-node refuses plain http unless TLS verification is off.
clusters: [{ name: standin, cluster: { server: "${api.url}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: {} }]
contexts: [{ name: standin, context: { cluster: standin, user: u } }]
current-context: standin
`,
    );
    const { s, call } = ipc(file);
    const started = await call("keel:portforward:start", { context: "standin" });
    expect(started).toMatchObject({
      ok: true,
      value: {
        context: "standin",
        namespace: "keel",
        service: "keel-web",
        pod: "keel-web-7d9f-abcde",
        targetPort: (web.address() as net.AddressInfo).port,
        baseUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      },
    });
    const { baseUrl, forwardId } = (started as { value: { baseUrl: string; forwardId: string } }).value;

    expect(await Promise.all([get(`${baseUrl}/api/v1/sessions`), get(`${baseUrl}/healthz`)])).toEqual([
      "hello from the pod: GET /api/v1/sessions",
      "hello from the pod: GET /healthz",
    ]);
    const upgrades = api.requests.filter((r) => r.startsWith("UPGRADE"));
    expect(upgrades).toHaveLength(3); // the probe at start, then one WebSocket per local connection
    expect(new Set(upgrades)).toEqual(
      new Set([`UPGRADE /api/v1/namespaces/keel/pods/keel-web-7d9f-abcde/portforward?ports=${(web.address() as net.AddressInfo).port}`]),
    );
    expect(api.requests).toContain("GET /api/v1/namespaces/keel/services/keel-web");
    expect(statuses).toContainEqual({ forwardId, state: "listening", message: null });

    // A rollout replaces the pod: the next connection gets 404 for the old one and follows the Service.
    api.replacePod("keel-web-7d9f-fghij");
    expect(await get(`${baseUrl}/after-rollout`)).toBe("hello from the pod: GET /after-rollout");
    expect(statuses).toContainEqual({ forwardId, state: "listening", message: "pod keel/keel-web-7d9f-abcde is gone; forwarding to keel-web-7d9f-fghij now" });
    expect(api.requests.filter((r) => r.startsWith("UPGRADE")).at(-1)).toMatch(
      /^UPGRADE \/api\/v1\/namespaces\/keel\/pods\/keel-web-7d9f-fghij\/portforward\?ports=\d+$/,
    );

    // A refused connection later (RBAC changed, pod gone): the forward stays up and says why.
    api.refuse(403, 'pods "keel-web-7d9f-fghij" is forbidden: User "u" cannot create resource "pods/portforward"');
    await expect(get(`${baseUrl}/x`)).rejects.toThrow(/socket hang up|ECONNRESET/);
    const refusal = await waitFor(() => statuses.find((x) => x.forwardId === forwardId && x.state === "error"), { what: "an error status" });
    expect(refusal.message).toMatch(
      /may not port-forward to pod keel\/keel-web-7d9f-fghij port \d+ \(403 Forbidden: pods "keel-web-7d9f-fghij" is forbidden: User "u" cannot create resource "pods\/portforward"\)/,
    );

    expect(await call("keel:portforward:stop", { forwardId })).toEqual({ ok: true, value: { stopped: true } });
    expect(s.forwards.size).toBe(0);
    await expect(get(`${baseUrl}/again`)).rejects.toThrow(/ECONNREFUSED/);
    expect(statuses.at(-1)).toEqual({ forwardId, state: "stopped", message: null });
    expect(await call("keel:portforward:stop", { forwardId })).toEqual({ ok: true, value: { stopped: false } });

    // Refused at start: the error comes back from start, nothing listens.
    expect(await call("keel:portforward:start", { context: "standin" })).toMatchObject({ ok: false, error: { code: "forbidden" } });
    expect(s.forwards.size).toBe(0);
  } finally {
    await api?.close();
    web.closeAllConnections();
    await new Promise<void>((r) => web.close(() => r()));
  }
});
