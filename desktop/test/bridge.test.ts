// The bridge's own protocol, without a cluster: token, unknown channels, bad bodies, argument
// validation through the same wrapper as IPC, static files without path traversal, and the
// WebSocket refusing a wrong token or a foreign origin.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import WebSocket from "ws";
import { startBridge, type Bridge } from "../bridge/server.ts";
import { loadKubeconfig } from "../src/main/kube.ts";

let bridge: Bridge;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "bridge-"));
  const staticDir = path.join(dir, "www");
  mkdirSync(staticDir);
  writeFileSync(path.join(staticDir, "index.html"), "<!doctype html><title>renderer</title>");
  writeFileSync(path.join(dir, "secret.txt"), "outside");
  const empty = path.join(dir, "kubeconfig");
  writeFileSync(empty, "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n");
  bridge = await startBridge({ staticDir, load: () => loadKubeconfig({ env: { KUBECONFIG: empty } }) });
});

afterAll(async () => {
  await bridge?.close();
  rmSync(dir, { recursive: true, force: true });
});

const invoke = (channel: string, body: string, token = bridge.token) =>
  fetch(`${bridge.url}/invoke/${channel}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body });

test("invoke: token required, unknown channel 404, bad JSON 400, non-array 422, bad arguments a Result", async () => {
  const ok = await invoke("kube:contexts:list", "[]");
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ ok: true, value: { current: null, contexts: [] } });

  const noToken = await invoke("kube:contexts:list", "[]", "wrong");
  expect(noToken.status).toBe(401);
  expect(await noToken.json()).toMatchObject({ error: { code: "unauthorized", message: expect.stringContaining("bridge token"), details: {} } });
  expect((await invoke("kube:nope", "[]")).status).toBe(404);
  expect((await invoke("kube:contexts:list", "{not json")).status).toBe(400);
  expect((await invoke("kube:contexts:list", "{}")).status).toBe(422);
  expect((await invoke("kube:contexts:list", "[" + "1,".repeat(600_000) + "1]")).status).toBe(413);
  const bad = await invoke("sandboxes:list", JSON.stringify([{ context: "" }]));
  expect(bad.status).toBe(200);
  expect(await bad.json()).toMatchObject({ ok: false, error: { code: "invalid_input", message: expect.stringContaining("context") } });
  const missing = await invoke("kube:context:status", JSON.stringify([{ context: "ghost" }]));
  expect(await missing.json()).toMatchObject({ ok: false, error: { code: "context_not_found" } });
});

test("static files: the renderer, nothing outside its directory", async () => {
  const page = await fetch(`${bridge.url}/`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("renderer");
  expect((await fetch(`${bridge.url}/..%2Fsecret.txt`)).status).toBe(404);
  expect((await fetch(`${bridge.url}/%2e%2e/secret.txt`)).status).toBe(404);
});

test("events: a socket with the token receives emits; a wrong token or another origin is refused", async () => {
  const open = (url: string, origin?: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, origin ? { origin } : {});
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    });
  const ws = await open(`${bridge.url.replace("http", "ws")}/events?token=${bridge.token}`);
  const got = new Promise<unknown>((resolve) => ws.once("message", (m) => resolve(JSON.parse(String(m)))));
  bridge.emit("kube:contexts:changed", { current: "x" });
  expect(await got).toEqual({ event: "kube:contexts:changed", payload: { current: "x" } });
  ws.close();
  await expect(open(`${bridge.url.replace("http", "ws")}/events?token=wrong`)).rejects.toThrow(/401/);
  await expect(open(`${bridge.url.replace("http", "ws")}/events?token=${bridge.token}`, "http://evil.example")).rejects.toThrow(/401/);
});
