// Runs one command with per-process rlimits (set by the shell's `ulimit` before exec, so they are
// hard limits the command cannot raise), a wall-clock timeout that kills its whole process
// group, and capped output. rlimits, not cgroups: cgroup delegation is often unavailable (our CI
// container), and in a Kubernetes pod the pod's cgroup limits apply on top of these.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from "node:child_process";
import type { ExecResult } from "./ledger.js";

export type Limits = {
  cpuSeconds?: number;
  memoryMb?: number;
  maxProcesses?: number;
  maxFileSizeMb?: number;
  /** A cgroup bounds the whole sandbox's memory at memoryMb (the local driver's memory cgroup, a pod's limit). */
  memoryInGroup?: boolean;
  /**
   * No RLIMIT_NPROC: the kernel counts it per uid, not per sandbox, and every sandbox pod (and
   * Keel's own pods) runs as uid 1000 in the node's user namespace: ~17 sandboxes on one node at the
   * default 256 left every sandbox's commands unable to fork. Pods are bounded by the kubelet's
   * pids limit instead (podPidsLimit; k8s/README.md).
   */
  processesPerUidShared?: boolean;
};

/**
 * RLIMIT_AS counts address space, not memory: V8 reserves about 1.2 GB before it runs a line
 * (Node 24; Node 20 about 0.7 GB), JVMs and some Go programs more, so `ulimit -v` at the default
 * 1024 MB kept `node` from starting at all in a sandbox. Where a cgroup bounds the memory, the
 * address-space limit is only a backstop against one runaway mapping, at least this much.
 */
export const ADDRESS_SPACE_FLOOR_MB = 4096;

export type ExecRequest = {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  maxOutputBytes: number;
  stdin?: string;
  onOutput?: (stream: "stdout" | "stderr", chunk: string) => void;
  /** Single-digit fds inherited from the runtime that the command must not get (its listening socket). */
  closeFds?: number[];
};

let nprocFlag: string | undefined;
/** dash spells the process-count limit `-p`; bash and busybox ash spell it `-u`. */
function processLimitFlag(): string {
  nprocFlag ??= spawnSync("/bin/sh", ["-c", "ulimit -u"], { stdio: "ignore" }).status === 0 ? "-u" : "-p";
  return nprocFlag;
}

export function limitScript(limits: Limits, closeFds: number[] = []): string {
  const parts: string[] = [];
  // Node cannot mark an fd it was handed CLOEXEC: the shell closes it before the command runs.
  for (const fd of closeFds) parts.push(`exec ${fd}<&-`);
  // The soft limit signals SIGXCPU (reported as "cpu"); the hard limit a little later kills a
  // process that ignores it. Soft first: a hard limit below the current soft one is EINVAL.
  if (limits.cpuSeconds) parts.push(`ulimit -S -t ${Math.ceil(limits.cpuSeconds)}`, `ulimit -H -t ${Math.ceil(limits.cpuSeconds) + 2}`);
  if (limits.memoryMb) {
    const mb = limits.memoryInGroup ? Math.max(limits.memoryMb, ADDRESS_SPACE_FLOOR_MB) : limits.memoryMb;
    parts.push(`ulimit -v ${Math.ceil(mb * 1024)}`);
  }
  // -f counts 512-byte blocks in POSIX shells.
  if (limits.maxFileSizeMb) parts.push(`ulimit -f ${Math.ceil(limits.maxFileSizeMb * 2048)}`);
  if (limits.maxProcesses && !limits.processesPerUidShared) parts.push(`ulimit ${processLimitFlag()} ${Math.ceil(limits.maxProcesses)}`);
  // A limit that cannot be set must stop the command, not let it run unlimited.
  parts.push('exec "$@"');
  return parts.join(" || exit 126; ");
}

const SIGNAL_LIMITS: Record<string, ExecResult["limit"]> = { SIGXCPU: "cpu", SIGXFSZ: "fileSize" };
const SIGNUMS: Record<number, string> = { 24: "SIGXCPU", 25: "SIGXFSZ", 9: "SIGKILL" };

export function runCommand(req: ExecRequest, limits: Limits): Promise<ExecResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    // detached: its own process group, so the timeout kills everything it started.
    const stdio: StdioOptions = [req.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"];
    // Cast: some ambient type packages (Next.js) make NODE_ENV a required ProcessEnv key.
    const child: ChildProcess = spawn("/bin/sh", ["-c", limitScript(limits, req.closeFds), "sh", ...req.argv], {
      cwd: req.cwd,
      env: req.env as NodeJS.ProcessEnv,
      detached: true,
      stdio,
    });
    const out = { stdout: "", stderr: "", bytes: { stdout: 0, stderr: 0 }, truncated: false };
    let timedOut = false;
    let settled = false;
    const collect = (name: "stdout" | "stderr") => (chunk: Buffer) => {
      const room = req.maxOutputBytes - out.bytes[name];
      if (room <= 0) return void (out.truncated = true);
      const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (chunk.length > room) out.truncated = true;
      out.bytes[name] += piece.length;
      const text = piece.toString("utf8");
      out[name] += text;
      req.onOutput?.(name, text);
    };
    child.stdout!.on("data", collect("stdout"));
    child.stderr!.on("data", collect("stderr"));
    if (req.stdin !== undefined) child.stdin!.end(req.stdin);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, req.timeoutMs);
    let exit: { code: number | null; signal: string | null } | undefined;
    const finish = () => {
      if (settled || !exit) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.destroy();
      child.stderr!.destroy();
      let signal = exit.signal;
      // A shell reports a child killed by signal N as exit status 128+N.
      if (!signal && exit.code !== null && exit.code > 128) signal = SIGNUMS[exit.code - 128] ?? null;
      let limit: ExecResult["limit"] = timedOut ? "timeout" : signal ? SIGNAL_LIMITS[signal] : undefined;
      if (!limit && /CPU time limit exceeded/.test(out.stderr)) limit = "cpu";
      if (!limit && /File size limit exceeded/.test(out.stderr)) limit = "fileSize";
      if (!limit && /memory exhausted|Cannot allocate memory|out of memory|std::bad_alloc/i.test(out.stderr)) limit = "memory";
      if (!limit && /Cannot fork|Resource temporarily unavailable|retry: No child processes/i.test(out.stderr)) limit = "processes";
      resolve({
        exitCode: exit.code,
        signal: exit.signal,
        stdout: out.stdout,
        stderr: out.stderr,
        truncated: out.truncated,
        timedOut,
        durationMs: Date.now() - started,
        ...(limit ? { limit } : {}),
      });
    };
    child.on("error", (err) => {
      exit = { code: 127, signal: null };
      out.stderr += String(err.message);
      finish();
    });
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      // What it left running in its group goes with it (a fork bomb's survivors, stray
      // background jobs); `setsid` keeps a daemon on purpose. Anything that escaped the group
      // may still hold the pipes: do not wait for it past a short grace.
      killGroup();
      setTimeout(finish, 200).unref();
    });
    child.on("close", () => finish());
  });
}
