// Keel-aware claim actions against the real control plane and Keel's own driver and reaper
// (core): a claim the app creates carries a TTL and, in a Keel team namespace, Keel's labels, so
// the reaper lists it and releases it (an orphan: no Keel session has a desktop-… id); a claim
// Keel manages for a session shows its team and session and is not deleted or suspended from here.
import { afterAll, beforeAll, expect, test } from "vitest";
import { reapSandboxes } from "@keel/core";
import { testDriver } from "@keel/core/testing/k8s";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "./control-plane.ts";
import { ipcClient, templateYaml, value, warmPoolYaml, type Call } from "./helpers.ts";
import type { SandboxRow } from "../src/shared/contract.ts";

const context = "keel-test";
const prefix = "desk-keel-";
const team = "team1";
const teamNs = `${prefix}${team}`;
let kubeconfig: string;
let call: Call;
let plain: TestNamespace;

const claimYaml = (name: string, labels: Record<string, string>) => `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata:
  name: ${name}
  labels: ${JSON.stringify(labels)}
spec:
  warmPoolRef: { name: agents }
`;
const rows = (namespace: string) => value<SandboxRow[]>(call("sandboxes:list", { context, namespace }));
const claimRow = async (namespace: string, name: string) => (await rows(namespace)).find((r) => r.kind === "SandboxClaim" && r.name === name);

beforeAll(async () => {
  kubeconfig = await startControlPlane();
  call = ipcClient(kubeconfig);
  await kubectl(["delete", "namespace", teamNs, "--ignore-not-found", "--wait=true"], { timeoutMs: 120_000 });
  await kubectl(["create", "namespace", teamNs]);
  await kubectl(["label", "namespace", teamNs, "app.kubernetes.io/managed-by=keel", `keel.dev/team=${team}`]);
  plain = await createTestNamespace("desk-plain");
  for (const ns of [teamNs, plain.name]) {
    await kubectl(["apply", "-n", ns, "-f", "-"], { input: `${templateYaml("agent")}---\n${warmPoolYaml("agents", "agent", 0)}` });
  }
}, 600_000);

afterAll(async () => {
  await kubectl(["delete", "namespace", teamNs, "--wait=false", "--ignore-not-found"]);
  await plain?.cleanup();
});

test("a claim made in a Keel team namespace carries a TTL and Keel's labels, and Keel's reaper releases it; Keel's live claim stays", async () => {
  const before = Date.now();
  const created = await value<SandboxRow>(call("sandboxes:claim:create", { context, namespace: teamNs, template: "agent", ttlMinutes: 30 }));
  expect(created).toMatchObject({ kind: "SandboxClaim", team, session: expect.stringMatching(/^desktop-[0-9a-f]{6}$/), managedByKeel: false });
  expect(created.name).toBe(`s-${created.session}`);
  const expires = Date.parse(created.expiresAt!);
  expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 30 * 60_000);
  expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 60_000);
  const obj = await kubectlJson(["get", "sandboxclaims.extensions.agents.x-k8s.io", created.name, "-n", teamNs]);
  expect(obj.metadata.labels).toEqual({
    "app.kubernetes.io/created-by": "keel-desktop",
    "app.kubernetes.io/managed-by": "keel",
    "keel.dev/team": team,
    "keel.dev/session": created.session,
  });
  expect(obj.metadata.annotations["keel.dev/ttl-ms"]).toBe(String(30 * 60_000));
  expect(obj.spec.lifecycle).toEqual({ shutdownTime: created.expiresAt, shutdownPolicy: "Delete" });

  // A name of one's own would hide the claim from the reaper (it releases s-<session>).
  expect(await call("sandboxes:claim:create", { context, namespace: teamNs, template: "agent", name: "mine" })).toMatchObject({
    ok: false,
    error: { code: "invalid_input", message: expect.stringContaining(`namespace ${teamNs} is Keel's namespace for team ${team}`) },
  });

  // Keel's own claim for a live session, as its driver labels it.
  await kubectl(["apply", "-n", teamNs, "-f", "-"], {
    input: claimYaml("s-sess-live", { "app.kubernetes.io/managed-by": "keel", "keel.dev/team": team, "keel.dev/session": "sess-live" }),
  });
  const live = await waitFor(() => claimRow(teamNs, "s-sess-live"), { what: "Keel's claim in the list" });
  expect(live).toMatchObject({ team, session: "sess-live", managedByKeel: true });

  // The reaper (what every Keel worker runs) sees the app's claim: no live session has its id, so it is released.
  const reaped = await reapSandboxes({ driver: testDriver(kubeconfig, prefix), liveSessions: async (ids) => new Set(ids.filter((id) => id === "sess-live")) });
  expect(reaped.orphaned).toEqual([obj.metadata.uid]);
  await waitFor(async () => !(await claimRow(teamNs, created.name)), { what: "the app's claim released by the reaper" });
  expect(await claimRow(teamNs, "s-sess-live")).toBeTruthy();
});

test("Keel's claim for a session in use is neither deleted nor suspended from the app; an ordinary claim gets a TTL and no Keel labels", async () => {
  await kubectl(["apply", "-n", teamNs, "-f", "-"], {
    input: claimYaml("s-sess-busy", { "app.kubernetes.io/managed-by": "keel", "keel.dev/team": team, "keel.dev/session": "sess-busy" }),
  });
  await waitFor(() => claimRow(teamNs, "s-sess-busy"), { what: "the claim in the list" });
  const refused = `SandboxClaim ${teamNs}/s-sess-busy is Keel's sandbox for session sess-busy of team ${team}`;
  expect(await call("sandboxes:claim:delete", { context, namespace: teamNs, name: "s-sess-busy" })).toEqual({
    ok: false,
    error: { name: "KubeError", code: "conflict", message: expect.stringMatching(new RegExp(`^${refused}: deleting it here would break that session's run`)) },
  });
  expect(await call("sandboxes:suspend", { context, namespace: teamNs, kind: "SandboxClaim", name: "s-sess-busy" })).toMatchObject({
    ok: false,
    error: { code: "conflict", message: expect.stringContaining(`${refused}: suspending it here`) },
  });
  expect(await kubectlJson(["get", "sandboxclaims.extensions.agents.x-k8s.io", "s-sess-busy", "-n", teamNs])).toMatchObject({
    metadata: { name: "s-sess-busy" },
  });

  const mine = await value<SandboxRow>(call("sandboxes:claim:create", { context, namespace: plain.name, template: "agent", name: "by-hand" }));
  expect(mine).toMatchObject({ name: "by-hand", team: null, session: null, managedByKeel: false, expiresAt: expect.any(String) });
  const obj = await kubectlJson(["get", "sandboxclaims.extensions.agents.x-k8s.io", "by-hand", "-n", plain.name]);
  expect(obj.metadata.labels).toEqual({ "app.kubernetes.io/created-by": "keel-desktop" });
  expect(obj.spec.lifecycle.shutdownPolicy).toBe("Delete");
  expect(await value(call("sandboxes:claim:delete", { context, namespace: plain.name, name: "by-hand" }))).toEqual({ deleted: true });
});
