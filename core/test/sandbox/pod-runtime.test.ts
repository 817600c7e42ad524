// The sandbox runtime as a Kubernetes pod runs it: the template's start token in
// KEEL_RUNTIME_START_TOKEN (handed over to a session's token first, as a worker does), limits in
// KEEL_RUNTIME_LIMITS exactly as the team's SandboxTemplate sets them, listening on a port, as a
// uid that other pods on the same node share (every sandbox pod runs as 1000). Real processes:
// the "other pods" are processes of that uid started here with setpriv.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildRuntime } from "@keel/sandbox/build";
import { podRuntimeLimits } from "../../src/sandbox/k8s/objects.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";
import { waitFor } from "@keel/test/db";

const UID = 4242; // stands in for the pods' shared uid; unused on the test machine
const START = "pod-runtime-start-token-0123456789";
const TOKEN = "pod-runtime-session-token-0123456789abcdef";
const children: ChildProcess[] = [];
let dir: string;
let runtime: string;

const asUid = (argv: string[], env: Record<string, string> = {}) =>
  spawn("setpriv", ["--reuid", String(UID), "--regid", String(UID), "--clear-groups", ...argv], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } as unknown as NodeJS.ProcessEnv,
    stdio: "ignore",
  });

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("pod-runtime.test.ts starts processes as another uid: run the tests as root (CI does)");
  if (spawnSync("setpriv", ["--version"]).status !== 0) throw new Error("setpriv (util-linux) is required: apt-get install -y util-linux");
  dir = await mkdtemp(path.join(os.tmpdir(), "keel-pod-runtime-"));
  await chmod(dir, 0o755);
  runtime = await buildRuntime(path.join(dir, "runtime.mjs"));
  await chown(path.dirname(runtime), 0, 0);
});

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  spawnSync("pkill", ["-KILL", "-u", String(UID)]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

it("a uid already holding more processes than maxProcesses (other pods on the node) does not stop this pod's commands from forking", async () => {
  const policy = parseSandboxPolicy({ resources: { maxProcesses: 20 } });
  // Other pods of the node: 30 processes of the same uid, more than this sandbox's maxProcesses.
  for (let i = 0; i < 30; i++) children.push(asUid(["sleep", "300"]));
  await waitFor(async () => Number(spawnSync("pgrep", ["-c", "-u", String(UID)], { encoding: "utf8" }).stdout.trim()) >= 30);

  const workspace = path.join(dir, "workspace");
  await mkdir(workspace);
  await chown(workspace, UID, UID);
  const port = await freePort();
  children.push(
    asUid([process.execPath, runtime, "--port", String(port), "--host", "127.0.0.1", "--workspace", workspace], {
      KEEL_RUNTIME_START_TOKEN: START,
      KEEL_RUNTIME_LIMITS: podRuntimeLimits(policy),
    }),
  );
  const call = (p: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${port}${p}`, {
      method: body ? "POST" : "GET",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  // First contact, as the worker makes it: the start token hands the pod the session's token.
  const handOver = () =>
    fetch(`http://127.0.0.1:${port}/token`, {
      method: "POST",
      headers: { authorization: `Bearer ${START}`, "content-type": "application/json" },
      body: JSON.stringify({ token: TOKEN }),
    });
  await waitFor(async () => (await handOver().catch(() => null))?.ok === true);
  await waitFor(async () => (await call("/healthz").catch(() => null))?.ok === true);

  const r = (await (await call("/exec", { command: "for i in 1 2 3 4 5; do sleep 0.1 & done; wait; echo forked" })).json()) as {
    exitCode: number;
    stdout: string;
    stderr: string;
  };
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe("forked\n");
  expect(r.exitCode).toBe(0);
});
