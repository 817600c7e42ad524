// Real worker processes for tests: the fixture is bundled once so each start is a plain `node`.
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { bundleForNode } from "./support/bundle.ts";

const built = new Map<string, Promise<unknown>>();

export type WorkerProc = { child: ChildProcess; exited: Promise<{ at: Date; code: number | null; signal: NodeJS.Signals | null }> };

const live = new Set<ChildProcess>();

/** Starts fixtures/<fixture>.ts as a real process (bundled once per test run). */
export async function spawnWorkerProcess(env: Record<string, string>, fixture = "crash-worker"): Promise<WorkerProc> {
  const source = path.join(import.meta.dirname, `fixtures/${fixture}.ts`);
  const bundle = path.resolve(import.meta.dirname, `../../.tmp/${fixture}-${process.pid}.mjs`);
  if (!built.has(bundle)) built.set(bundle, bundleForNode(source, bundle));
  await built.get(bundle);
  const child = fork(bundle, [], { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  live.add(child);
  const exited = new Promise<{ at: Date; code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve({ at: new Date(), code, signal });
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code, signal) => reject(new Error(`worker exited before ready: ${code ?? signal}`)));
  });
  return { child, exited };
}

/** After a test: fail if a worker process was left behind (and kill it so the run can end). */
export function killLeftoverWorkers(): number {
  const n = live.size;
  for (const c of live) c.kill("SIGKILL");
  return n;
}
