// What electron-builder.yml would ship, checked without the Electron binary (electron-builder
// cannot run here): the config itself (no nsis, deb's default dependencies, fuses, icons, signing
// left to the environment), the files the asar would hold (out/ and package.json: main is
// bundled, so no node_modules), the resources beside it (kind/, k8s/), and the bundled main run
// inside that layout, outside any checkout, as a packaged app: it finds kind/up.sh in its
// resources, runs from a copy under userData, and pulls the published image (no source tree).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadYaml } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { freePort } from "@keel/cli/embedded-postgres";
import { kindStubBin } from "./helpers.ts";
import { buildBundles, desktopDir, runMain } from "./app-main.ts";
import { resolveScriptLayout } from "../src/main/launcher/resources.ts";

const root = path.resolve(desktopDir, "..");
const tmp = mkdtempSync(path.join(os.tmpdir(), "keel-package-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Builder = {
  directories: { app: string; buildResources: string };
  files: string[];
  asar: boolean;
  extraResources: { from: string; to: string; filter: string[] }[];
  electronFuses: Record<string, boolean>;
  linux: { target: string[] };
  deb?: { depends?: string[] };
  mac: Record<string, unknown>;
  win?: unknown;
  nsis?: unknown;
};
const cfg = loadYaml<Builder>(readFileSync(path.join(root, "electron-builder.yml"), "utf8"));
const pkg = JSON.parse(readFileSync(path.join(desktopDir, "package.json"), "utf8"));

/** Files under dir (relative, '/'-separated), skipping node_modules and build output. */
function walk(dir: string, skip = new Set(["node_modules", "dist", "test-results"])): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    skip.has(e.name) ? [] : e.isDirectory() ? walk(path.join(dir, e.name), skip).map((f) => `${e.name}/${f}`) : [e.name],
  );
}
/** electron-builder's file patterns: kept when a positive pattern matches and no "!" pattern does. */
const select = (files: string[], patterns: string[]) =>
  files.filter(
    (f) => patterns.some((p) => !p.startsWith("!") && path.matchesGlob(f, p)) && !patterns.some((p) => p.startsWith("!") && path.matchesGlob(f, p.slice(1))),
  );

beforeAll(() => {
  expect(buildBundles()).toBe("");
}, 300_000);

test("the config would ship: no Windows target, deb's default dependencies, fuses, an icon, signing from the environment only", () => {
  expect(cfg.win).toBeUndefined();
  expect(cfg.nsis).toBeUndefined();
  expect(cfg.linux.target).toEqual(["AppImage", "deb"]);
  expect(cfg.deb?.depends).toBeUndefined();
  expect(cfg.electronFuses).toEqual({
    runAsNode: false,
    enableCookieEncryption: true,
    enableNodeOptionsEnvironmentVariable: false,
    enableNodeCliInspectArguments: false,
    enableEmbeddedAsarIntegrityValidation: true,
    onlyLoadAppFromAsar: true,
    grantFileProtocolExtraPrivileges: false,
  });
  // No identity, certificate or notarization credentials in the file: CSC_* and APPLE_* from the environment.
  for (const k of ["identity", "notarize", "certificateFile", "certificatePassword"]) expect(cfg.mac[k]).toBeUndefined();
  // Main, preload and renderer are bundles: nothing is a runtime dependency, so the asar gets no node_modules.
  expect(pkg.dependencies).toBeUndefined();
  expect(Object.keys(pkg.devDependencies)).toEqual(expect.arrayContaining(["@keel/core", "electron", "react"]));
  // The icon electron-builder finds in buildResources: a 512×512 RGBA PNG.
  const icon = readFileSync(path.join(root, cfg.directories.buildResources, "icon.png"));
  expect(icon.subarray(1, 4).toString()).toBe("PNG");
  expect([icon.readUInt32BE(16), icon.readUInt32BE(20), icon[24], icon[25]]).toEqual([512, 512, 8, 6]);
});

test("the unpacked layout: the asar's files, kind/ and k8s/ beside it, and the bundled main runs the launcher from there", async () => {
  const appDir = path.join(root, cfg.directories.app);
  const asarFiles = select(walk(appDir), cfg.files).sort();
  const outFiles = walk(path.join(appDir, "out"))
    .map((f) => `out/${f}`)
    .filter((f) => !f.endsWith(".map"));
  expect(asarFiles).toEqual([...outFiles, "package.json"].sort());
  expect(asarFiles).toEqual(expect.arrayContaining(["out/main/main.js", "out/preload/index.cjs", "out/renderer/index.html"]));

  // The package as electron-builder lays it out (resources/app.asar, here unpacked as resources/app).
  const resources = path.join(tmp, "Keel", "resources");
  for (const f of asarFiles) cpSync(path.join(appDir, f), path.join(resources, "app", f));
  for (const r of cfg.extraResources) {
    for (const f of select(walk(path.join(root, r.from)), r.filter)) cpSync(path.join(root, r.from, f), path.join(resources, r.to, f));
  }
  expect(existsSync(path.join(resources, "kind/up.sh"))).toBe(true);
  expect(existsSync(path.join(resources, "k8s/overlays/kind/kustomization.yaml"))).toBe(true);
  expect(existsSync(path.join(resources, "kind/README.md"))).toBe(false);

  const dir = path.join(tmp, "run");
  const bin = path.join(dir, "bin");
  const state = path.join(dir, "state");
  const userData = path.join(dir, "userData");
  kindStubBin(bin, ["docker", "kind", "kubectl"]);
  mkdirSync(state, { recursive: true });
  const port = await freePort();
  const run = await runMain({
    main: path.join(resources, "app/out/main/main.js"),
    resourcesPath: resources,
    config: { userData, packaged: true },
    env: { PATH: bin, HOME: dir, STUB_STATE: state, SHELL: "/nonexistent/shell", KEEL_PORT: String(port), KUBECONFIG: path.join(dir, "none") },
    scenario: `
      await until(() => stub.windows.length === 1, "the window");
      await call("launcher:start", {});
      return await until(async () => { const s = (await call("launcher:state")).value; return s.status !== "running" && s.connection !== null && s; }, "the run to end");`,
  });
  expect(run.code, run.stderr).toBe(0);
  expect(run.result).toMatchObject({ status: "succeeded", image: "ghcr.io/example/keel:0.1.0", port });
  const calls = readFileSync(path.join(state, "calls"), "utf8").trim().split("\n");
  const staged = path.join(userData, "kind-env");
  // No source tree in a package: the published images are pulled, nothing is built.
  expect(calls).toEqual(expect.arrayContaining(["docker pull ghcr.io/example/keel:0.1.0", "docker pull ghcr.io/example/keel-sandbox:0.1.0"]));
  expect(calls.filter((c) => c.startsWith("docker build"))).toEqual([]);
  // The manifests applied are the staged copy of the package's k8s/.
  expect(calls).toContain(`kubectl --context kind-keel apply --server-side --force-conflicts -k ${staged}/k8s/agent-sandbox/v1.0.1`);
  expect(calls.some((c) => c.startsWith(`kubectl --context kind-keel apply --server-side -k ${staged}/.tmp/keel-kind-apply.`))).toBe(true);
});

test("a package without its resources says so instead of running a script that is not there", () => {
  const empty = mkdtempSync(path.join(tmp, "noresources-"));
  expect(() => resolveScriptLayout({ packaged: true, resourcesPath: empty, from: empty })).toThrow(
    `the app's resources have no kind/up.sh and k8s/ (looked in ${empty}): this package was built without its extraResources; reinstall it`,
  );
});
