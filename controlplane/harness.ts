// Test-side helpers for the local Kubernetes control plane (controlplane/up.sh).
// Node built-ins only. Typical use in a vitest file:
//
//   beforeAll(() => startControlPlane(), 300_000);
//   const ns = await createTestNamespace('sbx');   // { name, cleanup }
//   await kubectl(['apply', '-n', ns.name, '-f', '-'], { input: yaml });
//   await waitFor(async () => (await kubectlJson(['get', 'pod', 'p', '-n', ns.name])).status?.phase === 'Running');
//   await ns.cleanup();
//
// The control plane is started once (up.sh is idempotent) and left running; controlplane/down.sh
// or stopControlPlane() stops it. Env: KEEL_CP_STATE_DIR, KEEL_CP_BIN_DIR and the KEEL_CP_*_PORT
// variables are passed through to up.sh (see controlplane/README.md).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const controlPlaneDir = process.env.KEEL_CP_DIR ?? path.dirname(fileURLToPath(import.meta.url));
const stateDir = () => path.resolve(process.env.KEEL_CP_STATE_DIR ?? path.join(controlPlaneDir, ".state"));
const binDir = () => path.resolve(process.env.KEEL_CP_BIN_DIR ?? path.join(controlPlaneDir, ".bin"));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 120_000,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (result.code !== 0 && !opts.allowFailure) {
        reject(
          new Error(
            `${path.basename(cmd)} ${args.join(" ")} exited ${code ?? signal}\n` + `--- stderr ---\n${stderr.trim()}\n--- stdout ---\n${stdout.trim()}`,
          ),
        );
      } else {
        resolve(result);
      }
    });
    child.stdin.on("error", () => {}); // the child may exit before reading its input
    child.stdin.end(opts.input ?? "");
  });
}

let started: Promise<string> | undefined;

/** Starts the control plane once per process (idempotent: reuses one already running). Resolves to the kubeconfig path. */
export function startControlPlane(): Promise<string> {
  started ??= (async () => {
    const up = path.join(controlPlaneDir, "up.sh");
    const res = await run("bash", [up], { allowFailure: true, timeoutMs: 600_000 });
    if (res.code !== 0) {
      started = undefined;
      throw new Error(`controlplane/up.sh failed (exit ${res.code}); logs in ${stateDir()}/logs\n${res.stderr}\n${res.stdout}`);
    }
    const kubeconfig = res.stdout.trim().split("\n").pop() ?? "";
    if (!existsSync(kubeconfig)) throw new Error(`up.sh printed no kubeconfig path:\n${res.stdout}`);
    return kubeconfig;
  })();
  return started;
}

/** Stops every control-plane process (controlplane/down.sh). */
export async function stopControlPlane(): Promise<void> {
  started = undefined;
  await run("bash", [path.join(controlPlaneDir, "down.sh")], { timeoutMs: 120_000 });
}

export function kubeconfigPath(): string {
  return path.join(stateDir(), "kubeconfig");
}

/** Runs the kubectl built by build.sh against the test control plane. Throws on failure unless allowFailure. */
export function kubectl(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(path.join(binDir(), "kubectl"), ["--kubeconfig", kubeconfigPath(), ...args], opts);
}

/** kubectl ... -o json, parsed. */
export async function kubectlJson<T = any>(args: string[], opts: RunOptions = {}): Promise<T> {
  const res = await kubectl([...args, "-o", "json"], opts);
  return JSON.parse(res.stdout) as T;
}

/** Polls fn until it returns a truthy value (which is returned) or the timeout passes; then throws with the last state. */
export async function waitFor<T>(fn: () => Promise<T> | T, { timeoutMs = 60_000, intervalMs = 250, what = "condition" } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}; last: ${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace (the controller-manager removes its contents). */
  cleanup: (opts?: { wait?: boolean }) => Promise<void>;
}

/** Creates a uniquely named namespace, e.g. `sbx-1a2b3c4d`. */
export async function createTestNamespace(prefix = "test"): Promise<TestNamespace> {
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, 40);
  const name = `${base}-${randomBytes(4).toString("hex")}`;
  await kubectl(["create", "namespace", name]);
  return {
    name,
    cleanup: async ({ wait = false } = {}) => {
      await kubectl(["delete", "namespace", name, "--ignore-not-found", `--wait=${wait}`], { timeoutMs: 300_000 });
    },
  };
}

/** Runs fn in a fresh namespace and deletes it afterwards. */
export async function withNamespace<T>(prefix: string, fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = await createTestNamespace(prefix);
  try {
    return await fn(ns.name);
  } finally {
    await ns.cleanup();
  }
}
