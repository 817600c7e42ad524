// The session view (SessionSandboxes) through the Kubernetes driver, the same interface the web
// process uses with the local driver: a real control plane (kube-apiserver, agent-sandbox, kwok)
// and real Postgres. kwok runs no containers, so the driver's runtime client is pointed at a real
// runtime server on loopback holding the claim's token (as core/test/k8s/driver.test.ts does).
// Needs the control plane binaries: KEEL_CP_BIN_DIR, and its own KEEL_CP_STATE_DIR and ports.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl, kubectlJson, startControlPlane } from "../../../controlplane/harness.js";
import { deleteTeamNamespaces, loopbackRuntime, stopLoopbackRuntimes, testDriver } from "../k8s/helpers.ts";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";
import { RuntimeClient } from "../../src/sandbox/runtime-client.js";
import { SandboxStore } from "../../src/sandbox/store.js";
import { SessionSandboxes } from "../../src/sandbox/view.js";
import { useFixture } from "../fixture.js";

const f = useFixture();
const prefix = `kv${randomBytes(2).toString("hex")}-`;
const endpoints = new Map<string, string>(); // pod IP → loopback runtime
let kubeconfig = "";

beforeAll(async () => {
  kubeconfig = await startControlPlane();
}, 600_000);

afterAll(async () => {
  stopLoopbackRuntimes();
  if (!kubeconfig) return;
  await deleteTeamNamespaces(prefix);
}, 120_000);

function driver(store: SandboxStore) {
  return testDriver(kubeconfig, prefix, {
    readyTimeoutMs: 60_000, apiRetryMs: 2_000, store,
    runtimeClient: (e, token) => new RuntimeClient({ baseUrl: endpoints.get(e.podIP) ?? e.baseUrl }, token),
  });
}

describe("session view through the Kubernetes driver", () => {
  it("shows state and files of a claim's sandbox, team-scoped, and says so when it is suspended", async () => {
    const store = new SandboxStore(f.pool);
    const d = driver(store);
    const view = new SessionSandboxes({ db: f.pool, store, driver: () => d });
    const sessionId = await f.newSession();
    expect(await view.describe(f.teamId, sessionId)).toMatchObject({ sandbox: null, filesAvailable: false });

    const h = await d.acquire(sessionId, f.teamId, parseSandboxPolicy({}));
    const ns = `${prefix}${f.teamId}`;
    const { url, claim } = await loopbackRuntime(ns, `s-${sessionId}`);
    endpoints.set(claim.status.sandbox.podIPs[0], url);
    // A driver instance made after the endpoint map was set (the first one made its client at acquire).
    await driver(store).writeFile(h, "out/report.txt", "made in a pod");

    // A new driver instance (another web replica) with nothing in memory: the claim is enough.
    const fresh = new SessionSandboxes({ db: f.pool, store, driver: () => driver(store) });
    expect(await fresh.describe(f.teamId, sessionId)).toMatchObject({ sandbox: { id: h.sandboxId, driver: "kubernetes", state: "ready" }, filesAvailable: true });
    expect((await fresh.listFiles(f.teamId, sessionId, ".")).entries).toEqual([{ path: "out", type: "directory", sizeBytes: 0 }]);
    expect(await fresh.readFile(f.teamId, sessionId, "out/report.txt")).toMatchObject({ binary: false, content: "made in a pod", sizeBytes: 13 });
    await expect(fresh.readFile(f.teamId, sessionId, "../etc/passwd")).rejects.toMatchObject({ status: 400, code: "path_outside_workspace" });

    const other = (await f.tenancy.createTeam({ slug: `kv-${randomBytes(2).toString("hex")}`, name: "Other" })).id;
    await expect(fresh.describe(other, sessionId)).rejects.toMatchObject({ status: 404, code: "not_found" });
    await expect(fresh.readFile(other, sessionId, "out/report.txt")).rejects.toMatchObject({ status: 404 });

    await d.suspend(h);
    expect(await fresh.describe(f.teamId, sessionId)).toMatchObject({ sandbox: { state: "suspended" }, filesAvailable: false });
    await expect(fresh.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({ status: 409, code: "sandbox_not_running" });
    // Looking did not resume it: agent-sandbox still has it suspended.
    const sbx = await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", claim.status.sandbox.name, "-n", ns]);
    expect(sbx.spec.operatingMode).toBe("Suspended");
    await d.release(h);
    expect(await fresh.describe(f.teamId, sessionId)).toMatchObject({ sandbox: { state: "terminated" }, filesAvailable: false });
  }, 240_000);
});
