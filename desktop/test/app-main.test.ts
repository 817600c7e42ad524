// The BUNDLED main (desktop/out/main/main.js, what a package runs) under Node with a stub
// `electron` module (test/app-main.ts): it finds kind/up.sh from the bundle and starts the
// launcher (stub docker/kind/kubectl), and its lifecycle: one instance (a second focuses the
// first), a reload closes the window's watches (counted at the real API server), quit leaves no
// launcher process, and the next start stops the process groups a killed app left behind.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { freePort } from "@keel/cli/embedded-postgres";
import { kubectl, startControlPlane, waitFor } from "./control-plane.ts";
import { kindStubBin } from "./helpers.ts";
import { buildBundles, desktopDir, runMain } from "./app-main.ts";
import { groupAlive, processStat } from "../src/main/launcher/process.ts";

/** Live processes only: a zombie waiting for init to reap it counts as gone. */
const alive = (pid: number) => {
  const s = processStat(pid);
  return s !== null && s.state !== "Z" && s.state !== "X";
};

const root = path.resolve(desktopDir, "..");
const tmp = mkdtempSync(path.join(os.tmpdir(), "keel-app-main-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(() => {
  expect(buildBundles()).toBe("");
}, 300_000);

/** Stub tools first on a PATH with nothing else but bash's utilities (as in launcher.test.ts). */
function tools(name: string) {
  const dir = path.join(tmp, name);
  const bin = path.join(dir, "bin");
  const state = path.join(dir, "state");
  kindStubBin(bin, ["docker", "kind", "kubectl"]);
  mkdirSync(state, { recursive: true });
  mkdirSync(path.join(dir, "userData"), { recursive: true });
  const file = (f: string) => (existsSync(path.join(state, f)) ? readFileSync(path.join(state, f), "utf8") : "");
  return {
    dir,
    userData: path.join(dir, "userData"),
    env: { PATH: bin, HOME: dir, STUB_STATE: state, SHELL: "/nonexistent/shell", KUBECONFIG: path.join(dir, "no-kubeconfig") },
    calls: () => file("calls").split("\n").filter(Boolean),
    pids: () => file("pids").split(/\s+/).filter(Boolean).map(Number),
    control: (lines: string[]) => writeFileSync(path.join(state, "control"), lines.join("\n") + "\n"),
  };
}

const untilSettled = `await until(async () => { const s = (await call("launcher:state")).value; return s.status !== "running" && s.connection !== null && s; }, "the run to end");`;

test("the bundled main finds kind/up.sh from desktop/out/main and runs every step (stub tools)", async () => {
  const t = tools("bundle");
  const port = await freePort();
  const run = await runMain({
    config: { userData: t.userData },
    env: { ...t.env, KEEL_PORT: String(port) },
    scenario: `
      await until(() => stub.windows.length === 1, "the window");
      const started = await call("launcher:start", {});
      ${untilSettled}
      return { started, state: (await call("launcher:state")).value, logs: (await call("launcher:logs", {})).value.map((l) => l.line) };`,
  });
  expect(run.code, run.stderr).toBe(0);
  const { state, logs } = run.result;
  expect(logs.join("\n")).not.toMatch(/No such file/);
  expect(state).toMatchObject({ status: "succeeded", port, image: "keel:dev", dashboardUrl: `http://localhost:${port}` });
  expect(state.steps.map((s: { state: string }) => s.state)).toEqual(Array(8).fill("done"));
  // The checkout's script ran (its Dockerfile is there: the image is built, not pulled).
  expect(t.calls()).toContain(`kind create cluster --name keel --config ${os.tmpdir()}/keel-kind-keel-cluster.yaml --wait 180s`);
  expect(t.calls().some((c) => c.startsWith(`docker build --label keel.source=`) && c.endsWith(` -t keel:dev ${root}`))).toBe(true);
  // The handover ran and said why it could not connect: the stub cluster's context is not in any kubeconfig.
  expect(state.connection).toEqual({ id: null, baseUrl: `http://localhost:${port}`, error: expect.stringContaining('no context "kind-keel"') });
  // KEEL_PORT from the environment was honoured, not overwritten: the forward used it.
  expect(t.calls().at(-1)).toBe(`kubectl --context kind-keel -n keel port-forward svc/keel-web ${port}:3000`);
});

test("a second instance exits without a window; the first focuses its window on second-instance", async () => {
  const t = tools("single");
  const second = await runMain({
    config: { userData: t.userData, lock: false },
    env: t.env,
    scenario: `return { log: stub.log, channels: stub.handled.size };`,
  });
  expect(second.code, second.stderr).toBe(0);
  expect(second.result).toEqual({ log: ["lock", "quit", "quitted"], channels: 0 });

  const first = await runMain({
    config: { userData: t.userData, lock: true },
    env: t.env,
    scenario: `
      await until(() => stub.windows.length === 1, "the window");
      const before = stub.windows[0].focused;
      stub.app.emit("second-instance", {}, ["keel"], "/");
      return { windows: stub.windows.length, before, after: stub.windows[0].focused };`,
  });
  expect(first.code, first.stderr).toBe(0);
  expect(first.result).toEqual({ windows: 1, before: 1, after: 2 });
});

test("quit waits for the launcher: no process of the running step is left, the record is empty", async () => {
  const t = tools("quit");
  t.control(["hang kind create cluster*"]);
  const run = await runMain({
    config: { userData: t.userData },
    env: { ...t.env, KEEL_PORT: String(await freePort()) },
    scenario: `
      await until(() => stub.windows.length === 1, "the window");
      await call("launcher:start", {});
      const recorded = await until(async () => {
        const s = (await call("launcher:state")).value;
        const f = JSON.parse(await import("node:fs").then((fs) => fs.readFileSync(${JSON.stringify(path.join(t.userData, "launcher-groups.json"))}, "utf8")));
        return s.steps.find((x) => x.name === "cluster").state === "running" && f.length === 1 && f;
      }, "the cluster step to hang");
      await step("hanging", { recorded });
      stub.app.quit();
      await until(() => stub.quitted, "quit to finish");
      return { log: stub.log, recorded, after: JSON.parse(await import("node:fs").then((fs) => fs.readFileSync(${JSON.stringify(path.join(t.userData, "launcher-groups.json"))}, "utf8"))) };`,
    onStep: async () => {
      await waitFor(() => t.pids().length === 2, { what: "the stub's hanging processes" });
      for (const pid of t.pids()) expect(alive(pid)).toBe(true);
    },
  });
  expect(run.code, run.stderr).toBe(0);
  expect(run.result.log.filter((l: string) => l.startsWith("quit"))).toEqual(["quit", "quit", "quitted"]);
  const [{ pgid }] = run.result.recorded;
  expect(groupAlive(pgid)).toBe(false);
  for (const pid of t.pids()) expect(alive(pid)).toBe(false);
  expect(run.result.after).toEqual([]);
});

test("the next start stops the launcher processes a killed app left behind (recorded under userData)", async () => {
  const t = tools("orphans");
  t.control(["hang kind create cluster*"]);
  const killed = await runMain({
    config: { userData: t.userData },
    env: { ...t.env, KEEL_PORT: String(await freePort()) },
    scenario: `
      await until(() => stub.windows.length === 1, "the window");
      await call("launcher:start", {});
      await until(async () => (await call("launcher:state")).value.steps.find((x) => x.name === "cluster").state === "running", "the cluster step");
      await until(() => import("node:fs").then((fs) => fs.existsSync(${JSON.stringify(path.join(t.dir, "state/pids"))})), "the stub's pids");
      process.kill(process.pid, "SIGKILL");`,
  });
  expect(killed.code).toBe(null);
  const [{ pgid }] = JSON.parse(readFileSync(path.join(t.userData, "launcher-groups.json"), "utf8"));
  expect(groupAlive(pgid)).toBe(true); // the orphan: its own process group outlived the app

  const next = await runMain({
    config: { userData: t.userData },
    env: t.env,
    scenario: `await until(() => stub.windows.length === 1, "the window"); return true;`,
  });
  expect(next.code, next.stderr).toBe(0);
  expect(next.stderr).toContain(`stopped 1 launcher process group(s) left by an earlier run: ${pgid}`);
  expect(groupAlive(pgid)).toBe(false);
  expect(JSON.parse(readFileSync(path.join(t.userData, "launcher-groups.json"), "utf8"))).toEqual([]);
});

/** Watch requests the API server holds open for the four agent-sandbox kinds (apiserver_longrunning_requests). */
async function sandboxWatches(): Promise<number> {
  const metrics = (await kubectl(["get", "--raw", "/metrics"])).stdout;
  let n = 0;
  for (const m of metrics.matchAll(/^apiserver_longrunning_requests\{([^}]*)\} (\d+)$/gm)) {
    if (/verb="WATCH"/.test(m[1]!) && /resource="(sandboxclaims|sandboxes|sandboxtemplates|sandboxwarmpools)"/.test(m[1]!)) n += Number(m[2]);
  }
  return n;
}

test("a window's reload or crash closes its sandbox watches (counted at the API server); others' stay until quit", async () => {
  const kubeconfig = await startControlPlane();
  const baseline = await sandboxWatches();
  const want: Record<string, number> = { "two-watches": baseline + 8, reloaded: baseline + 4, reopened: baseline + 8, crashed: baseline + 4, quit: baseline };
  const seen: Record<string, number> = {};
  const run = await runMain({
    config: { userData: path.join(tmp, "reload") },
    env: { KUBECONFIG: kubeconfig, SHELL: "/nonexistent/shell" },
    scenario: `
      await until(() => stub.windows.length === 1, "the window");
      const wc = stub.windows[0].webContents;
      const a = await call("sandboxes:watch:start", { context: "keel-test" });
      // Another window's call (its own webContents id): not touched by this window's reload.
      const b = await call("sandboxes:watch:start", { context: "keel-test" }, { id: 999 });
      await step("two-watches");
      // What Electron emits when the window reloads.
      wc.emit("did-start-navigation", { isMainFrame: true, isSameDocument: false, url: "file:///index.html" });
      await step("reloaded");
      const c = await call("sandboxes:watch:start", { context: "keel-test" });
      await step("reopened");
      wc.emit("render-process-gone", {}, { reason: "crashed" });
      await step("crashed");
      stub.app.quit();
      await until(() => stub.quitted, "quit to finish");
      await step("quit");
      return [a.ok, b.ok, c.ok];`,
    onStep: async (name) => {
      seen[name] = await waitFor(
        async () => {
          const n = await sandboxWatches();
          return n === want[name] ? n : undefined;
        },
        { what: `${want[name]} sandbox watches at the API server (${name})` },
      );
    },
  });
  expect(run.code, run.stderr).toBe(0);
  expect(run.result).toEqual([true, true, true]);
  expect(seen).toEqual(want);
}, 600_000);
