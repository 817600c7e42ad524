// The session view (SessionSandboxes) through the Kubernetes driver, the same interface the web
// process uses with the local driver: a real control plane (kube-apiserver, agent-sandbox, kwok)
// and real Postgres. kwok runs no containers, so the driver's runtime client is pointed at a real
// runtime server on loopback holding the claim's token (as core/test/k8s/driver.test.ts does).
// Needs the control plane binaries: KEEL_CP_BIN_DIR, and its own KEEL_CP_STATE_DIR and ports.
import { randomBytes } from "node:crypto";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane } from "@keel/controlplane/harness";
import {
  applyPlatformRbac,
  deleteTeamNamespaces,
  ensurePriorityClasses,
  lateBoundRuntime,
  loopbackRuntime,
  stopLoopbackRuntimes,
  testDriver,
} from "../k8s/helpers.ts";
import type { RuntimeEndpoint } from "../../src/sandbox/k8s/driver.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";
import { SandboxRelayClient, SandboxRelayServer } from "../../src/sandbox/relay.js";
import { RuntimeClient } from "../../src/sandbox/runtime-client.js";
import { liveSessionIds, liveTeamIds, SandboxStore } from "../../src/sandbox/store.js";
import { reapSandboxes } from "../../src/sandbox/reaper.js";
import { createPool } from "../../src/db/pool.js";
import { createTestDatabase } from "@keel/test/db";
import { sessionPolicyResolver, SessionSandboxes } from "../../src/sandbox/view.js";
import { Secrets } from "../../src/secrets.js";
import { testLogger, useFixture } from "../fixture.js";

const f = useFixture();
const prefix = `kv${randomBytes(2).toString("hex")}-`;
const endpoints = new Map<string, string>(); // pod IP → loopback runtime
let kubeconfig = "";

beforeAll(async () => {
  kubeconfig = await startControlPlane();
  await ensurePriorityClasses(); // the driver's sandbox pods name keel-sandbox
}, 600_000);

afterAll(async () => {
  stopLoopbackRuntimes();
  if (!kubeconfig) return;
  await deleteTeamNamespaces(prefix);
}, 120_000);

function driver(store: SandboxStore) {
  return testDriver(kubeconfig, prefix, {
    readyTimeoutMs: 60_000,
    apiRetryMs: 2_000,
    store,
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
    expect(await fresh.describe(f.teamId, sessionId)).toMatchObject({
      sandbox: { id: h.sandboxId, driver: "kubernetes", state: "ready" },
      filesAvailable: true,
    });
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

/** The loopback runtime standing in for each claim's pod, looked up at each call (lateBoundRuntime). */
const byClaim = new Map<string, string>();
const lateBoundClient = (e: RuntimeEndpoint, token: string) => lateBoundRuntime(() => byClaim.get(e.claim) ?? e.baseUrl, token, { timeoutMs: 60_000 });

describe("session view on Kubernetes from a web process with no cluster access (relay through a worker)", () => {
  it("lists, reads and starts through the worker; never wakes a suspended sandbox; a silent sandbox or no worker answers 503 at the deadline", async () => {
    const home = await createTestNamespace("kvr");
    const platform = await applyPlatformRbac(home.name, prefix);
    const store = new SandboxStore(f.pool);
    // The worker: the Kubernetes driver as the platform ServiceAccount (k8s/base/rbac.yaml).
    const workerDriver = testDriver(platform.kubeconfig, prefix, { readyTimeoutMs: 60_000, apiRetryMs: 2_000, store, runtimeClient: lateBoundClient });
    const workerView = new SessionSandboxes({
      db: f.pool,
      store,
      driver: () => workerDriver,
      resolvePolicy: sessionPolicyResolver(f.pool, new Secrets({ pool: f.pool })),
    });
    const relay = new SandboxRelayServer({
      pool: f.pool,
      connectionString: f.url,
      view: workerView,
      driverName: "kubernetes",
      workerId: "w-relay-test",
      logger: testLogger,
    });
    await relay.start();
    // The web: no driver, no kubeconfig; only the database.
    const remote = new SandboxRelayClient({ pool: f.pool, connectionString: f.url, driverName: "kubernetes", logger: testLogger, filesTimeoutMs: 3_000 });
    const web = new SessionSandboxes({ db: f.pool, store, remote });
    const blackHole = net.createServer(() => {}); // accepts and never answers: a pod that hangs
    await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", r));
    try {
      const sessionId = await f.newSession();
      const h = await workerDriver.acquire(sessionId, f.teamId, parseSandboxPolicy({}));
      const ns = `${prefix}${f.teamId}`;
      const { url, claim } = await loopbackRuntime(ns, `s-${sessionId}`);
      byClaim.set(claim.metadata.name, url);
      await workerDriver.writeFile(h, "out/report.txt", "made in a pod");

      expect(await web.describe(f.teamId, sessionId)).toMatchObject({
        sandbox: { id: h.sandboxId, driver: "kubernetes", state: "ready" },
        filesAvailable: true,
      });
      expect((await web.listFiles(f.teamId, sessionId, ".")).entries).toEqual([{ path: "out", type: "directory", sizeBytes: 0 }]);
      expect(await web.listFiles(f.teamId, sessionId, "out")).toMatchObject({
        path: "out",
        entries: [{ path: "out/report.txt", type: "file", sizeBytes: 13 }],
        truncated: false,
      });
      expect(await web.readFile(f.teamId, sessionId, "out/report.txt")).toMatchObject({ binary: false, content: "made in a pod", sizeBytes: 13 });
      await expect(web.readFile(f.teamId, sessionId, "../etc/passwd")).rejects.toMatchObject({ status: 400, code: "path_outside_workspace" });
      await expect(web.readFile(f.teamId, sessionId, "missing.txt")).rejects.toMatchObject({ status: 404 });
      const other = (await f.tenancy.createTeam({ slug: `kr-${randomBytes(2).toString("hex")}`, name: "Other" })).id;
      await expect(web.readFile(other, sessionId, "out/report.txt")).rejects.toMatchObject({ status: 404, code: "not_found" });

      // Suspended: refused (409) and left suspended; only `start` wakes it, and it runs in the worker.
      await workerDriver.suspend(h);
      await expect(web.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({
        status: 409,
        code: "sandbox_not_running",
        details: { state: "suspended" },
      });
      const sandboxName = claim.status.sandbox.name;
      expect((await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", sandboxName, "-n", ns])).spec.operatingMode).toBe("Suspended");
      expect(await web.start(f.teamId, sessionId)).toMatchObject({ sandbox: { id: h.sandboxId, state: "ready" }, filesAvailable: true });
      expect((await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", sandboxName, "-n", ns])).spec.operatingMode).toBe("Running");
      expect(await web.readFile(f.teamId, sessionId, "out/report.txt")).toMatchObject({ content: "made in a pod" });

      // A pod that accepts and never answers: the web answers at its deadline, saying a worker tried.
      byClaim.set(claim.metadata.name, `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`);
      await expect(web.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({
        status: 503,
        code: "sandbox_unavailable",
        message: expect.stringContaining("the sandbox did not answer"),
      });
      byClaim.set(claim.metadata.name, url);
      expect((await web.listFiles(f.teamId, sessionId, ".")).entries).toHaveLength(1);

      // No worker: 503 at the deadline, naming what to check.
      await relay.stop();
      await expect(web.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({
        status: 503,
        message: expect.stringContaining("no worker took the request within 3 s"),
      });
      expect((await f.pool.query(`SELECT count(*)::int AS n FROM sandbox_requests`)).rows[0].n).toBe(0);
      await workerDriver.release(h);
    } finally {
      blackHole.close();
      await relay.stop();
      await remote.stop();
      await platform.cleanup();
      await home.cleanup();
    }
  }, 240_000);
});

describe("a deleted team's namespace", () => {
  it("is removed by the reaper once the team is gone from the database; other teams' stay; a database with no team at all removes nothing", async () => {
    const d = driver(new SandboxStore(f.pool));
    const policy = parseSandboxPolicy({});
    const gone = (await f.tenancy.createTeam({ slug: `kg-${randomBytes(2).toString("hex")}`, name: "Gone" })).id;
    const goneAgent = (await f.tenancy.createAgent(gone, { name: "helper", model: "demo" })).id;
    const goneSession = (await f.tenancy.createSession(gone, { agentId: goneAgent })).id;
    const keepSession = await f.newSession();
    await d.acquire(keepSession, f.teamId, policy);
    await d.acquire(goneSession, gone, policy);
    expect(await d.teamsWithResources()).toEqual(expect.arrayContaining([f.teamId, gone]));

    // A database holding no team (a wrong DATABASE_URL, a restore under way) is not "every team
    // deleted": nothing goes.
    const empty = await createTestDatabase();
    const emptyPool = createPool(empty.url, { max: 2 });
    try {
      expect(await liveTeamIds(emptyPool, [f.teamId, gone])).toBeNull();
      const none = await reapSandboxes({ driver: d, liveSessions: async (ids) => new Set(ids), liveTeams: (ids) => liveTeamIds(emptyPool, ids) });
      expect(none.teamsRemoved).toEqual([]);
    } finally {
      await emptyPool.end();
      await empty.drop();
    }
    expect(await d.teamsWithResources()).toEqual(expect.arrayContaining([f.teamId, gone]));

    await f.pool.query("DELETE FROM teams WHERE id = $1", [gone]);
    const r = await reapSandboxes({ driver: d, liveSessions: (ids) => liveSessionIds(f.pool, ids), liveTeams: (ids) => liveTeamIds(f.pool, ids) });
    expect(r.teamsRemoved).toEqual([gone]);
    expect(r.errors).toEqual([]);
    const ns = (await kubectl(["get", "namespace", `${prefix}${gone}`, "-o", "json", "--ignore-not-found"])).stdout;
    expect(ns === "" || JSON.parse(ns).metadata.deletionTimestamp).toBeTruthy();
    const left = await d.teamsWithResources();
    expect(left).toContain(f.teamId);
    expect(left).not.toContain(gone);
  }, 240_000);
});
