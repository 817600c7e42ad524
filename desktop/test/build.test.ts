// `electron-vite build` passes (the CI check for the Electron shell, whose binary cannot be
// installed here) and its bundles have the shape a locked-down Electron app needs.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { expect, test } from "vitest";
import { channels } from "../src/shared/contract.ts";

const desktopDir = path.resolve(import.meta.dirname, "..");
const out = (f: string) => readFileSync(path.join(desktopDir, "out", f), "utf8");

test("electron-vite build: main (ESM, everything but electron bundled), sandbox-safe preload, renderer with a CSP", () => {
  const build = spawnSync(process.execPath, [path.join(desktopDir, "../node_modules/electron-vite/bin/electron-vite.js"), "build"], {
    cwd: desktopDir,
    encoding: "utf8",
  });
  expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);

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

test("the bundled main registers every contract channel and answers through them (electron replaced by a stub module)", () => {
  // Electron cannot run here; a loader hook swaps the `electron` import for a stub that records
  // ipcMain.handle, so the real bundle (with its bundled dependencies) runs under Node.
  const dir = mkdtempSync(path.join(os.tmpdir(), "keel-main-bundle-"));
  try {
    const stub = path.join(dir, "electron-stub.mjs");
    writeFileSync(
      stub,
      `export const handled = (globalThis.__handled = new Map());
export const ipcMain = { handle: (ch, fn) => handled.set(ch, fn) };
export const app = { whenReady: () => new Promise(() => {}), on() {} };
export const BrowserWindow = class { static getAllWindows() { return []; } };
export const shell = { openExternal() {} };
`,
    );
    const hook = `export async function resolve(spec, ctx, next) { return spec === "electron" ? { url: ${JSON.stringify(pathToFileURL(stub).href)}, shortCircuit: true } : next(spec, ctx); }`;
    writeFileSync(
      path.join(dir, "register.mjs"),
      `import { register } from "node:module";\nregister("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));\n`,
    );
    writeFileSync(
      path.join(dir, "run.mjs"),
      `await import(${JSON.stringify(pathToFileURL(path.join(desktopDir, "out/main/main.js")).href)});
const h = globalThis.__handled;
const contexts = await h.get("kube:contexts:list")({});
const bad = await h.get("sessions:connect")({}, { baseUrl: "x", apiKey: "y" });
console.log(JSON.stringify({ channels: [...h.keys()].sort(), contexts, bad }));
process.exit(0);
`,
    );
    const kubeconfig = path.join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: one\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: one\n",
    );
    const r = spawnSync(process.execPath, ["--import", pathToFileURL(path.join(dir, "register.mjs")).href, path.join(dir, "run.mjs")], {
      encoding: "utf8",
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(got.channels).toEqual(Object.values(channels).sort());
    expect(got.contexts).toMatchObject({ ok: true, value: { current: "one", contexts: [{ name: "one", server: "https://127.0.0.1:1" }] } });
    expect(got.bad).toMatchObject({ ok: false, error: { code: "invalid_input" } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
