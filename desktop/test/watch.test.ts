// Sandbox watches against the real control plane, through a loopback TCP proxy (core/test/k8s/proxy.ts)
// so the test can drop the watch connections or refuse them for a while.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, startControlPlane, waitFor, type TestNamespace } from "./control-plane.ts";
import { FaultProxy, kubeconfigWithServer } from "@keel/core/testing/k8s-proxy";
import { ipcClient, templateYaml, type Call } from "./helpers.ts";
import { createMainServices, type MainServices } from "../src/main/ipc.ts";
import type { EventName, EventPayloads, WatchStatus } from "../src/shared/contract.ts";

const context = "keel-test";
let ns: TestNamespace;
let other: TestNamespace;
let dir: string;
let proxy: FaultProxy;
let services: MainServices;
let call: Call;
const events: { name: EventName; payload: any }[] = [];

const changes = () => events.filter((e) => e.name === "sandboxes:changed").map((e) => e.payload as EventPayloads["sandboxes:changed"]);
const statuses = () => events.filter((e) => e.name === "sandboxes:watch:status").map((e) => e.payload as WatchStatus);
const changed = (name: string) => changes().find((c) => c.name === name);
const template = (name: string, namespace = ns.name) => kubectl(["apply", "-n", namespace, "-f", "-"], { input: templateYaml(name) });

beforeAll(async () => {
  const kubeconfig = await startControlPlane();
  ns = await createTestNamespace("watch");
  other = await createTestNamespace("watch-other");
  proxy = await FaultProxy.start({ host: "127.0.0.1", port: Number(process.env.KEEL_CP_API_PORT) });
  dir = await mkdtemp(path.join(os.tmpdir(), "keel-desktop-watch-"));
  // The same cluster and credentials, reached through the proxy (the server certificate is for 127.0.0.1).
  const proxied = kubeconfigWithServer(kubeconfig, proxy.url, path.join(dir, "kubeconfig"));
  services = createMainServices({ emit: (name, payload) => events.push({ name, payload }), watchBackoff: { baseMs: 50, maxMs: 400 } });
  call = ipcClient(proxied, services);
}, 600_000);

afterAll(async () => {
  await services?.dispose();
  await proxy?.close();
  await ns?.cleanup();
  await other?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a change shows up as a sandboxes:changed event; other namespaces stay quiet; the watch survives dropped and refused connections; stop ends it", async () => {
  const started: any = await call("sandboxes:watch:start", { context, namespace: ns.name });
  expect(started).toMatchObject({ ok: true, value: { context, namespace: ns.name, state: "watching", attempt: 0, message: null } });
  const watchId: string = started.value.watchId;

  await template("t1");
  await template("elsewhere", other.name);
  await waitFor(() => changed("t1"), { what: "an event for t1" });
  // The event carries the row as the list would show it: the renderer patches its rows, no re-list.
  expect(changed("t1")).toEqual({
    context,
    kind: "SandboxTemplate",
    namespace: ns.name,
    name: "t1",
    row: expect.objectContaining({ kind: "SandboxTemplate", namespace: ns.name, name: "t1", status: "available" }),
  });
  await kubectl(["delete", "sandboxtemplate", "t1", "-n", ns.name]);
  await waitFor(() => changes().filter((c) => c.name === "t1").length >= 2, { what: "an event for t1's deletion" });
  expect(
    changes()
      .filter((c) => c.name === "t1")
      .at(-1),
  ).toEqual({ context, kind: "SandboxTemplate", namespace: ns.name, name: "t1", row: null });
  // The other namespace's template was created before t1's deletion: a leak would be here by now.
  expect(changes().filter((c) => c.namespace !== ns.name)).toEqual([]);

  // Connections reset, new ones still accepted: the watches reconnect.
  const accepted = proxy.stats.accepted;
  proxy.drop();
  await waitFor(() => proxy.stats.accepted >= accepted + 4, { what: "the four watches to reconnect" });
  await template("t2");
  await waitFor(() => changed("t2"), { what: "an event for t2 after the drop" });

  // Refused for a while: the watch says it is reconnecting; a change made meanwhile (straight to the
  // API server) arrives once it is back, from the re-list.
  await proxy.down();
  const refused = () => statuses().filter((s) => s.state === "reconnecting" && /ECONNREFUSED/.test(s.message ?? ""));
  const reconnecting = await waitFor(() => refused()[0], { what: "a reconnecting status" });
  expect(reconnecting).toMatchObject({
    watchId,
    attempt: expect.any(Number),
    message: expect.stringMatching(
      /^(watch of sandbox\w+ in namespace watch-\w+ (dropped|could not start)|cannot reach the API server of context "keel-test" at https:\/\/127\.0\.0\.1:\d+): .*ECONNREFUSED/,
    ),
  });
  await template("t3");
  await waitFor(() => refused().some((s) => s.attempt >= reconnecting.attempt + 1), { what: "another reconnect attempt" });
  expect(changed("t3")).toBeUndefined();
  await proxy.up();
  await waitFor(() => changed("t3"), { what: "t3, made while the watch was away" });
  await waitFor(() => statuses().at(-1)?.state === "watching", { what: "watching again" });
  await template("t4");
  await waitFor(() => changed("t4"), { what: "t4 on the new watch" });

  expect(await call("sandboxes:watch:stop", { watchId })).toEqual({ ok: true, value: { stopped: true } });
  expect(statuses().at(-1)).toMatchObject({ watchId, state: "stopped" });
  // Nothing of the watch is left connected (the keep-alive pool closes its idle sockets too).
  await waitFor(() => proxy.open === 0, { timeoutMs: 30_000, what: "no connection left through the proxy" });
  expect(await call("sandboxes:watch:stop", { watchId })).toEqual({ ok: true, value: { stopped: false } });
}, 180_000);

test("across all namespaces, and errors at start: wrong context, unreachable server, bad input", async () => {
  const all: any = await call("sandboxes:watch:start", { context });
  expect(all).toMatchObject({ ok: true, value: { namespace: null, state: "watching" } });
  await template("everywhere", other.name);
  await waitFor(() => changes().find((c) => c.name === "everywhere" && c.namespace === other.name), { what: "an event from another namespace" });
  expect(await call("sandboxes:watch:stop", { watchId: all.value.watchId })).toMatchObject({ ok: true });

  expect(await call("sandboxes:watch:start", { context: "nope" })).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "context_not_found",
      message: 'no context "nope" in your kubeconfig (contexts: keel-test). Check KUBECONFIG or run kubectl config get-contexts',
    },
  });
  await proxy.down();
  try {
    expect(await call("sandboxes:watch:start", { context, namespace: ns.name })).toMatchObject({
      ok: false,
      error: {
        code: "unreachable",
        message: expect.stringMatching(/cannot reach the API server of context "keel-test" at https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/),
      },
    });
  } finally {
    await proxy.up();
  }
  expect(await call("sandboxes:watch:start", { context, namespace: "Bad_NS" })).toMatchObject({ ok: false, error: { code: "invalid_input" } });
  expect(services.watches.size).toBe(0); // failed starts leave nothing running
});
