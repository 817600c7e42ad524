// Suspend/resume and a sandbox's events against the real control plane (agent-sandbox controller
// deletes and recreates the pod; kwok makes it Ready; the scheduler reports it).
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "./control-plane.ts";
import { ipcClient, templateYaml, value, warmPoolYaml, type Call } from "./helpers.ts";
import type { SandboxEvent, SandboxRow } from "../src/shared/contract.ts";

const context = "keel-test";
let ns: TestNamespace;
let call: Call;
const row = async (kind: string, name: string) =>
  (await value<SandboxRow[]>(call("sandboxes:list", { context, namespace: ns.name }))).find((r) => r.kind === kind && r.name === name);
const pods = async () =>
  (await kubectlJson<{ items: { metadata: { name: string; deletionTimestamp?: string } }[] }>(["get", "pods", "-n", ns.name])).items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name);

beforeAll(async () => {
  call = ipcClient(await startControlPlane());
  ns = await createTestNamespace("life");
  await kubectl(["apply", "-n", ns.name, "-f", "-"], { input: `${templateYaml("agent")}---\n${warmPoolYaml("agent", "agent", 0)}` });
}, 600_000);

afterAll(async () => {
  await ns?.cleanup();
});

test("suspend a claim's sandbox (pod deleted), resume it (a new pod, Ready), and read its events", async () => {
  await value(call("sandboxes:claim:create", { context, namespace: ns.name, template: "agent", name: "c1" }));
  const ready = await waitFor(
    async () => {
      const c = await row("SandboxClaim", "c1");
      return c?.status === "ready" && c.sandbox ? c : undefined;
    },
    { timeoutMs: 90_000, what: "c1 ready" },
  );
  const sandbox = ready.sandbox!;
  expect(await pods()).toEqual([sandbox]);

  const suspended = await value<SandboxRow>(call("sandboxes:suspend", { context, namespace: ns.name, kind: "SandboxClaim", name: "c1" }));
  expect(suspended).toMatchObject({ kind: "SandboxClaim", name: "c1", status: "suspended", sandbox });
  expect(await pods()).toEqual([]);
  expect(await row("Sandbox", sandbox)).toMatchObject({ status: "suspended" });
  expect(await row("SandboxClaim", "c1")).toMatchObject({ status: "suspended" }); // the list agrees
  // Suspending again is a no-op that answers the same.
  expect(await value(call("sandboxes:suspend", { context, namespace: ns.name, kind: "Sandbox", name: sandbox }))).toMatchObject({
    kind: "Sandbox",
    status: "suspended",
  });

  const resumed = await value<SandboxRow>(call("sandboxes:resume", { context, namespace: ns.name, kind: "SandboxClaim", name: "c1" }));
  expect(resumed).toMatchObject({ kind: "SandboxClaim", name: "c1", status: "ready" });
  expect(await pods()).toEqual([sandbox]);
  expect(await row("Sandbox", sandbox)).toMatchObject({ status: "ready" });

  const events = await value<SandboxEvent[]>(call("sandboxes:events", { context, namespace: ns.name, kind: "SandboxClaim", name: "c1" }));
  expect(events).toContainEqual(
    expect.objectContaining({ kind: "SandboxClaim", name: "c1", type: "Normal", reason: "SandboxProvisioned", source: "sandboxclaim-controller" }),
  );
  const scheduled = events.filter((e) => e.kind === "Pod" && e.name === sandbox && e.reason === "Scheduled");
  expect(scheduled.length).toBeGreaterThanOrEqual(1); // once per pod: before the suspend, and after the resume
  expect(scheduled[0]).toMatchObject({
    source: "default-scheduler",
    message: expect.stringContaining(`Successfully assigned ${ns.name}/${sandbox} to kwok-node-0`),
  });
  expect(events.every((e) => e.lastSeen)).toBe(true);
  expect(events.map((e) => e.lastSeen)).toEqual([...events.map((e) => e.lastSeen)].sort());
  // By the Sandbox's name too (no claim events then).
  const bySandbox = await value<SandboxEvent[]>(call("sandboxes:events", { context, namespace: ns.name, kind: "Sandbox", name: sandbox }));
  expect(bySandbox.some((e) => e.kind === "Pod")).toBe(true);
  expect(bySandbox.some((e) => e.kind === "SandboxClaim")).toBe(false);
}, 300_000);

test("errors: unknown claim or sandbox, a claim without a sandbox yet, bad input, wrong context", async () => {
  expect(await call("sandboxes:suspend", { context, namespace: ns.name, kind: "SandboxClaim", name: "ghost" })).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "not_found",
      message: `there is no SandboxClaim "ghost" in namespace ${ns.name}: it may have been deleted; refresh the list`,
    },
  });
  expect(await call("sandboxes:resume", { context, namespace: ns.name, kind: "Sandbox", name: "ghost" })).toMatchObject({
    ok: false,
    error: { code: "not_found", message: expect.stringContaining('no Sandbox "ghost"') },
  });
  expect(await call("sandboxes:events", { context, namespace: ns.name, kind: "SandboxClaim", name: "ghost" })).toMatchObject({
    ok: false,
    error: { code: "not_found" },
  });

  // A claim naming a pool that does not exist never gets a Sandbox.
  await kubectl(["apply", "-n", ns.name, "-f", "-"], {
    input: `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata:
  name: orphan
spec:
  warmPoolRef:
    name: no-such-pool
`,
  });
  expect(await call("sandboxes:suspend", { context, namespace: ns.name, kind: "SandboxClaim", name: "orphan" })).toMatchObject({
    ok: false,
    error: {
      code: "conflict",
      message: `SandboxClaim ${ns.name}/orphan has no Sandbox yet (it is still being provisioned): wait until it is ready, then suspend it`,
    },
  });
  // Its events are the claim's alone (and listing them works without a sandbox).
  const orphanEvents = await value<SandboxEvent[]>(call("sandboxes:events", { context, namespace: ns.name, kind: "SandboxClaim", name: "orphan" }));
  expect(orphanEvents.every((e) => e.kind === "SandboxClaim")).toBe(true);

  expect(await call("sandboxes:suspend", { context, namespace: ns.name, kind: "Pod", name: "x" })).toMatchObject({
    ok: false,
    error: { code: "invalid_input", message: expect.stringContaining("0.kind") },
  });
  expect(await call("sandboxes:suspend", { context: "nope", namespace: ns.name, kind: "Sandbox", name: "x" })).toMatchObject({
    ok: false,
    error: { code: "context_not_found" },
  });
});
