// The local driver's egress path: one host-side proxy process per sandbox whose policy has an
// allow-list (sandbox/src/egress-proxy.ts, bundled beside the runtime). It is started detached
// with the sandbox, runs as the sandbox's host uid, listens on <sandbox dir>/egress/proxy.sock
// (bound read-only into the sandbox) and dies with it (the driver kills both).
//
// Why a process of its own and not a server inside the worker: the sandbox outlives the worker
// that started it (a command keeps running through a worker crash), so its way out must too; and
// two workers on one machine never race to serve one socket.
import { chown, mkdir, open, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { SandboxPolicy } from "./policy.js";
import { parseEgressAllowList, type EgressRule } from "./egress.js";
import { isSameProcessAlive, launchDetached, sleep } from "./local-process.js";
import { connectUnix } from "./runtime-client.js";
import { rotateLog } from "@keel/sandbox/log-file";

export type EgressProcess = { egressPid: number; egressStartTime: string };

export function egressDir(sandboxDir: string): string {
  return path.join(sandboxDir, "egress");
}

/** The rules for a policy, or undefined when the policy allows no egress at all. */
export function egressRulesOf(policy: SandboxPolicy): EgressRule[] | undefined {
  return policy.egress === "none" ? undefined : parseEgressAllowList(policy.egress.allow);
}

/**
 * Starts the proxy and returns once it is launched; `waitForEgressProxy` then waits for its
 * socket. The driver starts the sandbox in between: the two start in parallel (the runtime only
 * connects to the socket when a command opens a connection).
 */
export async function launchEgressProxy(opts: {
  sandboxDir: string;
  proxyScript: string;
  nodePath: string;
  rules: EgressRule[];
  hosts: Record<string, string>;
  /** Address rules the operator opened inside internal space (private, loopback, metadata…). */
  internal?: EgressRule[];
  /** egress.log is rotated past this size (one old copy kept). */
  maxLogBytes: number;
  uid?: number;
  gid?: number;
}): Promise<EgressProcess> {
  const dir = egressDir(opts.sandboxDir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o755 });
  // The proxy (as the sandbox's uid) creates its socket here; the sandbox sees the dir read-only.
  if (opts.uid !== undefined) await chown(dir, opts.uid, opts.gid ?? opts.uid);
  const socket = path.join(dir, "proxy.sock");
  const logFile = path.join(opts.sandboxDir, "egress.log");
  await rotateLog(logFile, opts.maxLogBytes);
  const log = await open(logFile, "a", 0o600);
  // The proxy (as the sandbox's uid) appends and rotates it itself; root's sandbox dir is not writable to it.
  if (opts.uid !== undefined) await chown(logFile, opts.uid, opts.gid ?? opts.uid);
  let launched;
  try {
    launched = await launchDetached(opts.nodePath, [opts.proxyScript, "--socket", socket, "--config-stdin"], {
      stdin: JSON.stringify({ rules: opts.rules, hosts: opts.hosts, internal: opts.internal ?? [], log: { path: logFile, maxBytes: opts.maxLogBytes } }),
      logFd: log.fd,
      cwd: opts.sandboxDir,
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    });
  } finally {
    await log.close();
  }
  return { egressPid: launched.pid, egressStartTime: launched.pidStartTime };
}

export async function waitForEgressProxy(sandboxDir: string, proc: EgressProcess, timeoutMs: number): Promise<void> {
  const socket = path.join(egressDir(sandboxDir), "proxy.sock");
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(socket))) {
    if (!isSameProcessAlive(proc.egressPid, proc.egressStartTime)) throw new Error(`the egress proxy exited at start: ${await logTail(sandboxDir)}`);
    if (Date.now() > deadline) throw new Error(`the egress proxy did not listen within ${timeoutMs} ms: ${await logTail(sandboxDir)}`);
    await sleep(10);
  }
}

function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connectUnix(socket);
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}

async function logTail(sandboxDir: string): Promise<string> {
  const text = await readFile(path.join(sandboxDir, "egress.log"), "utf8").catch(() => "");
  return text.trim().split("\n").slice(-3).join(" | ") || "(no output)";
}
