// Sandboxes view operations against the real control plane: agent-sandbox controller + kwok, so
// claims really become Ready and warm pools really scale.
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, startControlPlane, waitFor, type TestNamespace } from "./control-plane.ts";
import { ipcClient, templateYaml, value, warmPoolYaml, type Call } from "./helpers.ts";
import type { SandboxRow } from "../src/shared/contract.ts";

let ns: TestNamespace;
let call: Call;
const context = "keel-test";

const list = () => value<SandboxRow[]>(call("sandboxes:list", { context, namespace: ns.name }));
const row = (rows: SandboxRow[], kind: string, name: string) => rows.find((r) => r.kind === kind && r.name === name);

beforeAll(async () => {
  call = ipcClient(await startControlPlane());
  ns = await createTestNamespace("desk");
  await kubectl(["apply", "-n", ns.name, "-f", "-"], { input: `${templateYaml("agent")}---\n${warmPoolYaml("agents", "agent", 1)}` });
}, 600_000);

afterAll(async () => {
  await ns?.cleanup();
});

test("create a claim from a template, see it become ready in the list, scale the pool, delete the claim", async () => {
  const before = await list();
  expect(row(before, "SandboxTemplate", "agent")).toMatchObject({ status: "available", namespace: ns.name, ageSeconds: expect.any(Number) });
  expect(row(before, "SandboxWarmPool", "agents")).toMatchObject({ template: "agent", replicas: 1 });

  const created = await value<SandboxRow>(call("sandboxes:claim:create", { context, namespace: ns.name, template: "agent", name: "claim-1" }));
  expect(created).toMatchObject({ kind: "SandboxClaim", name: "claim-1", warmPool: "agents", status: "requested" });

  const ready = await waitFor(
    async () => {
      const c = row(await list(), "SandboxClaim", "claim-1");
      return c?.status === "ready" && c.sandbox ? c : undefined;
    },
    { timeoutMs: 90_000, what: "claim-1 ready in the list" },
  );
  expect(ready.reason).toBeTruthy();
  const rows = await list();
  expect(row(rows, "Sandbox", ready.sandbox!)).toMatchObject({ status: "ready" });

  // Across namespaces too (no namespace given).
  const all = await value<SandboxRow[]>(call("sandboxes:list", { context }));
  expect(
    row(
      all.filter((r) => r.namespace === ns.name),
      "SandboxClaim",
      "claim-1",
    ),
  ).toBeTruthy();

  const scaled = await value<SandboxRow>(call("sandboxes:warmpool:scale", { context, namespace: ns.name, name: "agents", replicas: 2 }));
  expect(scaled).toMatchObject({ kind: "SandboxWarmPool", replicas: 2 });
  await waitFor(async () => row(await list(), "SandboxWarmPool", "agents")?.readyReplicas === 2, { timeoutMs: 90_000, what: "warm pool at 2 ready" });
  expect(row(await list(), "SandboxWarmPool", "agents")).toMatchObject({ status: "ready", replicas: 2, readyReplicas: 2 });

  expect(await value(call("sandboxes:claim:delete", { context, namespace: ns.name, name: "claim-1" }))).toEqual({ deleted: true });
  await waitFor(async () => !row(await list(), "SandboxClaim", "claim-1"), { timeoutMs: 90_000, what: "claim-1 gone from the list" });
  await waitFor(async () => !row(await list(), "Sandbox", ready.sandbox!), { timeoutMs: 90_000, what: `sandbox ${ready.sandbox} garbage-collected` });
  expect(await value(call("sandboxes:claim:delete", { context, namespace: ns.name, name: "claim-1" }))).toEqual({ deleted: false });
}, 300_000);

test("a claim from a template with no warm pool, or an unknown template, says what to do", async () => {
  await kubectl(["apply", "-n", ns.name, "-f", "-"], {
    input: `
${templateYaml("lonely")}`,
  });
  expect(await call("sandboxes:claim:create", { context, namespace: ns.name, template: "lonely" })).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "not_found",
      message: expect.stringMatching(/no SandboxWarmPool in namespace desk-\w+ uses template "lonely".*create one \(replicas: 0 is fine\)/),
    },
  });
  expect(await call("sandboxes:claim:create", { context, namespace: ns.name, template: "ghost" })).toMatchObject({
    ok: false,
    error: { code: "not_found", message: `there is no SandboxTemplate "ghost" in namespace ${ns.name}: pick one of the templates listed there` },
  });
  expect(await call("sandboxes:warmpool:scale", { context, namespace: ns.name, name: "ghost", replicas: 1 })).toMatchObject({
    ok: false,
    error: { code: "not_found" },
  });
});
