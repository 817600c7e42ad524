// Runs a built main (desktop/out/main/main.js, or a copy of it inside a package's layout) under
// Node with `electron` swapped for test/fixtures/electron-stub.mjs by a loader hook, then a
// scenario: the body of an async function (stub, call, step) in the same process, whose return
// value comes back as JSON. `step(name, data)` pauses the scenario until the test has looked at
// the world (the API server's watch count, processes) and answered through `onStep`.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

export const desktopDir = path.resolve(import.meta.dirname, "..");
const stubUrl = pathToFileURL(path.join(import.meta.dirname, "fixtures/electron-stub.mjs")).href;

/** `electron-vite build` in desktop/ (writes out/); "" when it passed, else its output. */
export function buildBundles(): string {
  const build = spawnSync(process.execPath, [path.join(desktopDir, "../node_modules/electron-vite/bin/electron-vite.js"), "build"], {
    cwd: desktopDir,
    encoding: "utf8",
  });
  return build.status === 0 ? "" : `exit ${build.status}\n${build.stdout}\n${build.stderr}`;
}

export type MainRun = { result: any; stderr: string; code: number | null; pid: number };

export async function runMain(o: {
  main?: string;
  config: { userData: string; packaged?: boolean; lock?: boolean };
  resourcesPath?: string;
  env?: Record<string, string>;
  scenario: string;
  onStep?: (name: string, data: any) => Promise<unknown> | unknown;
}): Promise<MainRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "keel-main-run-"));
  const hook = `export async function resolve(spec, ctx, next) { return spec === "electron" ? { url: ${JSON.stringify(stubUrl)}, shortCircuit: true } : next(spec, ctx); }`;
  writeFileSync(
    path.join(dir, "register.mjs"),
    `import { register } from "node:module";\nregister("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));\n`,
  );
  const main = o.main ?? path.join(desktopDir, "out/main/main.js");
  writeFileSync(
    path.join(dir, "run.mjs"),
    `import { createInterface } from "node:readline";
globalThis.__electronConfig = ${JSON.stringify(o.config)};
${o.resourcesPath ? `process.resourcesPath = ${JSON.stringify(o.resourcesPath)};` : ""}
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const step = async (name, data = null) => { process.stdout.write("STEP " + JSON.stringify({ name, data }) + "\\n"); return JSON.parse((await answers.next()).value); };
await import(${JSON.stringify(pathToFileURL(main).href)});
const stub = globalThis.__electron;
const until = async (f, what) => { for (let i = 0; i < 2400; i++) { const v = await f(); if (v) return v; await new Promise((r) => setTimeout(r, 50)); } throw new Error("timed out waiting for " + what); };
const call = (channel, arg, sender) => stub.handled.get(channel)({ sender: sender ?? stub.windows[0]?.webContents }, ...(arg === undefined ? [] : [arg]));
const result = await (async (stub, call, step, until) => { ${o.scenario} })(stub, call, step, until);
process.stdout.write("RESULT " + JSON.stringify(result ?? null) + "\\n");
process.exit(0);
`,
  );
  const child = spawn(process.execPath, ["--import", pathToFileURL(path.join(dir, "register.mjs")).href, path.join(dir, "run.mjs")], {
    env: { ...process.env, ...o.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  let result: any = undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith("STEP ")) {
      const { name, data } = JSON.parse(line.slice(5));
      const answer = (await o.onStep?.(name, data)) ?? null;
      child.stdin.write(JSON.stringify(answer) + "\n");
    } else if (line.startsWith("RESULT ")) result = JSON.parse(line.slice(7));
  }
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on("close", (c) => r(c))));
  return { result, stderr, code, pid: child.pid! };
}
