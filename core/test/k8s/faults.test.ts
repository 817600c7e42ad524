// Faults between the Kubernetes driver and the real API server: a watch cut while acquire waits
// for Ready, the API server down for a while (and for too long), two workers creating the same
// claim at once. The driver runs as the platform ServiceAccount and talks through a loopback TCP
// proxy (proxy.ts) that this file alone cuts or closes, so the shared control plane and the other
// test files never notice.
//
// Holding acquire in its wait: the "held" team's SandboxTemplate carries a pod scheduling gate
// (added by the test, beside the driver's fields), so the claim's pod stays Pending until the test
// lifts the gate; the driver is then watching for Ready for exactly as long as a test needs.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { createTestNamespace, kubeconfigPath, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { parseSandboxPolicy, reapSandboxes, SandboxUnavailableError } from "../../src/index.ts";
import { RuntimeClient } from "../../src/sandbox/runtime-client.ts";
import { RuntimeTokens, type KubernetesDriverOptions } from "../../src/sandbox/k8s/index.ts";
import {
  applyPlatformRbac,
  platformMay,
  capturingLogger,
  claimOf,
  claimsOfSession,
  deleteTeamNamespaces,
  repoRoot,
  testDriver,
  TEST_TOKEN_KEY,
  type PlatformIdentity,
} from "./helpers.ts";
import { FaultProxy, kubeconfigServer, kubeconfigWithServer } from "./proxy.ts";

const prefix = `kf${randomBytes(2).toString("hex")}-`;
const policy = parseSandboxPolicy({ template: "default" });
const HELD = "team-held";
const heldNs = `${prefix}${HELD}`;
const GATE = "keel.dev/test-hold";
const SANDBOXES = "sandboxes.v1beta1.agents.x-k8s.io";
let home: TestNamespace;
let platform: PlatformIdentity;
let proxy: FaultProxy;
let viaProxy: string;

beforeAll(async () => {
  await startControlPlane();
  home = await createTestNamespace("kf-home");
  platform = await applyPlatformRbac(home.name, prefix);
  await platformMay(home.name, platform, ["create", "sandboxclaims.extensions.agents.x-k8s.io"]);
  proxy = await FaultProxy.start(kubeconfigServer(platform.kubeconfig));
  viaProxy = kubeconfigWithServer(platform.kubeconfig, proxy.url, path.join(repoRoot, ".tmp", `kubeconfig-proxy-${home.name}`));
  // The held team: one acquire makes its namespace and template, then the template gets the gate.
  const d = driver(platform.kubeconfig);
  await d.release(await d.acquire("warm-up", HELD, policy));
  await kubectl([
    "patch",
    "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io",
    "default",
    "-n",
    heldNs,
    "--type=merge",
    "-p",
    JSON.stringify({ spec: { podTemplate: { spec: { schedulingGates: [{ name: GATE }] } } } }),
  ]);
}, 180_000);

// A test that failed while "the API server" was down must not take the next one with it.
afterEach(() => proxy.up());

afterAll(async () => {
  await proxy?.close();
  rmSync(viaProxy, { force: true });
  await deleteTeamNamespaces(prefix);
  await platform?.cleanup();
  await home?.cleanup();
}, 120_000);

function driver(kubeconfig: string, extra: Partial<KubernetesDriverOptions> = {}) {
  return testDriver(kubeconfig, prefix, { readyTimeoutMs: 90_000, apiRetryMs: 60_000, ...extra });
}

/** The claim's pod once it exists and is held by the gate. */
async function heldPod(claimName: string): Promise<string | undefined> {
  const sandbox: string | undefined = (await claimOf(heldNs, claimName))?.status?.sandbox?.name;
  if (!sandbox) return undefined;
  const pod = await kubectl(["get", "pod", sandbox, "-n", heldNs, "-o", "json"], { allowFailure: true });
  return pod.code === 0 && JSON.parse(pod.stdout).spec.schedulingGates?.some((g: { name: string }) => g.name === GATE) ? sandbox : undefined;
}
const unhold = (pod: string) => kubectl(["patch", "pod", pod, "-n", heldNs, "--type=json", "-p", '[{"op":"remove","path":"/spec/schedulingGates"}]']);
const sandboxesOf = async (ns: string, claimUid: string) =>
  (await kubectlJson([`get`, SANDBOXES, "-n", ns])).items.filter((s: any) => s.metadata.ownerReferences?.some((o: any) => o.uid === claimUid));

test("a watch cut while acquire waits for Ready: the driver re-reads, watches again and reports ready; one claim, one sandbox", async () => {
  const d = driver(viaProxy);
  const acquiring = d.acquire("sess-watch", HELD, policy);
  const pod = await waitFor(() => heldPod("s-sess-watch"), { what: "the claim's pod, held" });
  await waitFor(() => d.api.watches.open === 1, { what: "the driver watching the claim" });
  const watchesBefore = d.api.calls.watch!;

  expect(proxy.drop()).toBeGreaterThanOrEqual(1);
  await waitFor(() => d.api.watches.dropped === 1 && d.api.watches.open === 1 && d.api.calls.watch! > watchesBefore, { what: "the driver watching again" });
  await unhold(pod);
  const h = await acquiring;

  const claims = await claimsOfSession(heldNs, "sess-watch");
  expect(claims.map((c) => c.metadata.uid)).toEqual([h.sandboxId]);
  expect(await sandboxesOf(heldNs, h.sandboxId)).toHaveLength(1);
  expect((await d.list({ teamId: HELD })).find((s) => s.sessionId === "sess-watch")?.state).toBe("ready");
  await d.release(h);
});

test("the API server down while acquire waits: reads are retried with jittered doubling backoff; ready once it is back", async () => {
  const { logger, lines } = capturingLogger();
  const d = driver(viaProxy, { logger });
  const acquiring = d.acquire("sess-down", HELD, policy);
  const pod = await waitFor(() => heldPod("s-sess-down"), { what: "the claim's pod, held" });
  await waitFor(() => d.api.watches.open === 1, { what: "the driver watching the claim" });

  await proxy.down();
  await waitFor(() => lines.length >= 4, { what: "four logged retries" });
  await proxy.up();
  await waitFor(() => d.api.watches.open === 1, { what: "the driver watching again" });
  await unhold(pod);
  const h = await acquiring;

  expect(lines.slice(0, 4).map((l) => [l.msg, l.verb, l.kind, l.attempt])).toEqual(
    [1, 2, 3, 4].map((n) => ["kubernetes api call failed; retrying", "get", "SandboxClaim", n]),
  );
  // backoffMs (core/src/backoff.ts): attempt n waits between half and all of 100 ms · 2^(n-1).
  lines.slice(0, 4).forEach((l, i) => {
    expect(l.retryInMs).toBeGreaterThanOrEqual(50 * 2 ** i);
    expect(l.retryInMs).toBeLessThanOrEqual(100 * 2 ** i);
  });
  expect(lines[0]!.err).toMatch(/ECONNREFUSED/);
  expect((await claimsOfSession(heldNs, "sess-down")).map((c) => c.metadata.uid)).toEqual([h.sandboxId]);
  await d.release(h);
});

test("the API server down when acquire starts: discovery is retried; the sandbox is made once it is back", async () => {
  const { logger, lines } = capturingLogger();
  await proxy.down();
  const d = driver(viaProxy, { logger });
  const acquiring = d.acquire("sess-late", "team-late", policy);
  await waitFor(() => lines.length >= 3, { what: "three logged retries" });
  expect(lines.map((l) => l.verb)).toEqual(lines.map(() => "discover"));
  await proxy.up();
  const h = await acquiring;
  expect((await claimsOfSession(`${prefix}team-late`, "sess-late")).map((c) => c.metadata.uid)).toEqual([h.sandboxId]);
  await d.release(h);
});

test("the API server down past apiRetryMs before anything was created: a clear 503 and nothing in the cluster", async () => {
  await proxy.down();
  const d = driver(viaProxy, { apiRetryMs: 1_500 });
  const err = await d.acquire("sess-never", "team-never", policy).catch((e) => e);
  expect(err).toBeInstanceOf(SandboxUnavailableError);
  expect(err).toMatchObject({ code: "sandbox_unavailable", status: 503, details: { verb: "discover", resource: "extensions.agents.x-k8s.io/v1beta1" } });
  expect(err.message).toMatch(
    /^the Kubernetes API server is unreachable \(discover extensions\.agents\.x-k8s\.io\/v1beta1\): .*ECONNREFUSED 127\.0\.0\.1:\d+; gave up after \d+ attempts in 1500 ms$/,
  );
  await proxy.up();
  expect((await kubectl(["get", "namespace", `${prefix}team-never`], { allowFailure: true })).code).not.toBe(0);
});

test("the API server down past apiRetryMs after the claims were created: a clear 503; the claims stay labelled, the orphan sweep removes a dead session's, the next acquire reuses a live session's", async () => {
  const d = driver(viaProxy, { apiRetryMs: 1_500 });
  const dead = d.acquire("sess-lost-dead", HELD, policy).catch((e) => e);
  const live = d.acquire("sess-lost-live", HELD, policy).catch((e) => e);
  const deadPod = await waitFor(() => heldPod("s-sess-lost-dead"), { what: "the first pod, held" });
  const livePod = await waitFor(() => heldPod("s-sess-lost-live"), { what: "the second pod, held" });
  await waitFor(() => d.api.watches.open === 2, { what: "the driver watching both claims" });

  await proxy.down();
  for (const err of [await dead, await live]) {
    expect(err).toBeInstanceOf(SandboxUnavailableError);
    expect(err.message).toMatch(/^the Kubernetes API server is unreachable \(get SandboxClaim\): .*ECONNREFUSED/);
  }
  await proxy.up();

  // Nothing could be deleted while the API server was away: the claims are still there, labelled
  // with team and session, so a restarted worker sees them.
  const deadUid = (await claimOf(heldNs, "s-sess-lost-dead")).metadata.uid;
  const liveUid = (await claimOf(heldNs, "s-sess-lost-live")).metadata.uid;
  const restarted = driver(viaProxy);
  const listed = (await restarted.list({ teamId: HELD })).filter((s) => s.sessionId.startsWith("sess-lost"));
  expect(listed.map((s) => [s.sessionId, s.sandboxId, s.state]).sort()).toEqual([
    ["sess-lost-dead", deadUid, "provisioning"],
    ["sess-lost-live", liveUid, "provisioning"],
  ]);

  // The dead session's claim: the orphan sweep deletes it, and the garbage collector its Sandbox and pod.
  const swept = await reapSandboxes({ driver: restarted, liveSessions: async (ids) => new Set(ids.filter((id) => id !== "sess-lost-dead")) });
  expect(swept.orphaned).toEqual([deadUid]);
  expect(swept.errors).toEqual([]);
  await waitFor(
    async () =>
      (await claimOf(heldNs, "s-sess-lost-dead")) === null && (await kubectl(["get", "pod", deadPod, "-n", heldNs], { allowFailure: true })).code !== 0,
    { timeoutMs: 60_000, what: "the orphan's claim and pod deleted" },
  );

  // The live session's: its next acquire picks the same claim up (no second one).
  await unhold(livePod);
  const h = await restarted.acquire("sess-lost-live", HELD, policy);
  expect(h.sandboxId).toBe(liveUid);
  expect((await claimsOfSession(heldNs, "sess-lost-live")).map((c) => c.metadata.uid)).toEqual([liveUid]);
  await restarted.release(h);
});

test("two workers create the same session's claim at once: one claim, both use it with its session's token", async () => {
  // Race seam: each driver waits before its create until both have read "no claim", so both
  // creates reach the API server and exactly one of them gets 409 AlreadyExists.
  let arrived = 0;
  let bothRead!: () => void;
  const barrier = new Promise<void>((r) => (bothRead = r));
  const beforeApiCall = async (verb: string, kind: string) => {
    if (verb !== "create" || kind !== "SandboxClaim") return;
    if (++arrived === 2) bothRead();
    await barrier;
  };
  const tokens: string[] = [];
  const runtimeClient: KubernetesDriverOptions["runtimeClient"] = (e, token) => (tokens.push(token), new RuntimeClient({ baseUrl: e.baseUrl }, token));
  const d1 = driver(platform.kubeconfig, { beforeApiCall, runtimeClient });
  const d2 = driver(platform.kubeconfig, { beforeApiCall, runtimeClient });
  const [h1, h2] = await Promise.all([d1.acquire("sess-race", "team-race", policy), d2.acquire("sess-race", "team-race", policy)]);

  expect(arrived).toBe(2);
  expect(h2.sandboxId).toBe(h1.sandboxId);
  const claims = await claimsOfSession(`${prefix}team-race`, "sess-race");
  expect(claims.map((c) => c.metadata.uid)).toEqual([h1.sandboxId]);
  const token = new RuntimeTokens(TEST_TOKEN_KEY).session(`${prefix}team-race`, h1.sandboxId);
  expect(tokens).toEqual([token, token]);
  await d1.release(h1);
});

describe("through a proxy that sees the requests", () => {
  // A TLS-terminating proxy (the API server's own serving certificate) sees each request line.
  let seeing: FaultProxy;
  let file: string;
  beforeAll(async () => {
    const pki = path.join(path.dirname(kubeconfigPath()), "pki");
    seeing = await FaultProxy.start(kubeconfigServer(platform.kubeconfig), {
      tls: { cert: `${pki}/apiserver.crt`, key: `${pki}/apiserver.key`, ca: `${pki}/ca.crt` },
    });
    file = kubeconfigWithServer(platform.kubeconfig, seeing.url, path.join(repoRoot, ".tmp", `kubeconfig-tls-proxy-${home.name}`));
  });
  afterAll(async () => {
    await seeing?.close();
    if (file) rmSync(file, { force: true });
  });

  test("a claim create that took effect but whose answer was lost: the retry's 409 finds that claim; one claim", async () => {
    const { logger, lines } = capturingLogger();
    const d = driver(file, { logger });
    const lost = seeing.loseAnswerTo(/^POST \/apis\/extensions\.agents\.x-k8s\.io\/v1beta1\/namespaces\/[^/]+\/sandboxclaims[?\s]/);
    const h = await d.acquire("sess-answer", "team-answer", policy);
    await lost;
    expect(lines.map((l) => [l.msg, l.verb, l.kind])).toEqual([["kubernetes api call failed; retrying", "create", "SandboxClaim"]]);
    expect(d.api.calls.create).toBe(2);
    expect((await claimsOfSession(`${prefix}team-answer`, "sess-answer")).map((c) => c.metadata.uid)).toEqual([h.sandboxId]);
    await d.release(h);
  });

  test("a watch answered with 410 Gone (its resourceVersion compacted away): the driver re-reads and watches again; ready", async () => {
    const d = driver(file);
    // The API server itself answers a watch from resourceVersion 1 with an ERROR event (410 Expired).
    const rewritten = seeing.rewriteRequestLine(
      /^(GET \/apis\/extensions\.agents\.x-k8s\.io\/v1beta1\/namespaces\/[^/]+\/sandboxclaims\?\S*resourceVersion=)\d+/,
      "$11",
    );
    const acquiring = d.acquire("sess-gone410", HELD, policy);
    await rewritten;
    const pod = await waitFor(() => heldPod("s-sess-gone410"), { what: "the claim's pod, held" });
    await waitFor(() => d.api.watches.dropped === 1 && d.api.watches.open === 1, { what: "the driver watching again after the 410" });
    await unhold(pod);
    const h = await acquiring;
    expect((await claimsOfSession(heldNs, "sess-gone410")).map((c) => c.metadata.uid)).toEqual([h.sandboxId]);
    await d.release(h);
  });
});

test("the claim deleted by someone else while acquire waits: acquire fails at once with a clear error", async () => {
  const d = driver(viaProxy);
  const acquiring = d.acquire("sess-gone", HELD, policy).catch((e) => e);
  await waitFor(() => heldPod("s-sess-gone"), { what: "the claim's pod, held" });
  await waitFor(() => d.api.watches.open === 1, { what: "the driver watching the claim" });
  const reads = d.api.calls.get;
  await kubectl(["delete", "sandboxclaims.v1beta1.extensions.agents.x-k8s.io", "s-sess-gone", "-n", heldNs, "--wait=false"]);
  const err = await acquiring;
  expect(err).toBeInstanceOf(SandboxUnavailableError);
  expect(err.message).toBe("the sandbox claim was deleted while it was starting");
  // The watch event ended the wait: no re-read (an error thrown from a watch event used to be
  // swallowed by the watch's line parser, leaving the wait to the next 10 s re-read).
  expect(d.api.calls.get).toBe(reads);
  expect(d.api.watches.dropped).toBe(0);
});
