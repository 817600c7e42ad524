// `electron-vite build` passes (the CI check for the Electron shell, whose binary cannot be
// installed here) and its bundles have the shape a locked-down Electron app needs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import os from "node:os";
import path from "node:path";
import { expect, test } from "vitest";
import { channels } from "../src/shared/contract.ts";
import { buildBundles, runMain } from "./app-main.ts";

const desktopDir = path.resolve(import.meta.dirname, "..");
const out = (f: string) => readFileSync(path.join(desktopDir, "out", f), "utf8");

test("electron-vite build: main (ESM, everything but electron bundled), sandbox-safe preload, renderer with a CSP", () => {
  expect(buildBundles()).toBe("");

  const main = out("main/main.js");
  // Everything is bundled: the only imports left are Node's built-ins and electron.
  const imports = [...main.matchAll(/^import .*? from "([^"]+)";$/gm)].map((m) => m[1]!);
  expect(imports).toContain("electron");
  expect(imports.filter((i) => i !== "electron" && !isBuiltin(i))).toEqual([]);
  expect(main).toMatch(/contextIsolation: true/);
  expect(main).toMatch(/nodeIntegration: false/);
  expect(main).toMatch(/sandbox: true/);
  expect(main).toContain("index.cjs");

  // A sandboxed preload may require only electron (no node_modules, no ESM).
  const preload = out("preload/index.cjs");
  expect([...preload.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1])).toEqual(["electron"]);
  expect(preload).toContain('exposeInMainWorld("desktop"');

  const html = out("renderer/index.html");
  expect(html).toContain("Content-Security-Policy");
  expect(html).toMatch(/<script type="module" crossorigin src="\.\/assets\/index-[\w-]+\.js">/);
});

test("the bundled main registers every contract channel and answers through them (electron replaced by a stub module)", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "keel-main-bundle-"));
  try {
    const kubeconfig = path.join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: one\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: one\n",
    );
    const r = await runMain({
      config: { userData: dir },
      env: { KUBECONFIG: kubeconfig, SHELL: "/nonexistent/shell" },
      scenario: `
        await until(() => stub.windows.length === 1, "the window");
        return { channels: [...stub.handled.keys()].sort(), contexts: await call("kube:contexts:list"), bad: await call("sessions:connect", { baseUrl: "x", apiKey: "y" }) };`,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = r.result;
    expect(got.channels).toEqual(Object.values(channels).sort());
    expect(got.contexts).toMatchObject({ ok: true, value: { current: "one", contexts: [{ name: "one", server: "https://127.0.0.1:1" }] } });
    expect(got.bad).toMatchObject({ ok: false, error: { code: "invalid_input" } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
