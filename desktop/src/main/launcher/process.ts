// Child processes of the launcher: each step runs in its own process group (detached), so cancel
// can kill the step's whole tree (bash → kind → docker …), not just the shell. A plain
// child.kill() would signal bash alone and leave `kind create cluster` running.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export type Exit = { code: number | null; signal: NodeJS.Signals | null };
export type GroupProcess = {
  pid: number;
  /** Resolves when the group leader exits (its children may outlive it until killed). */
  exited: Promise<Exit>;
  /** SIGTERM to the group, SIGKILL after graceMs to whatever is left; resolves when none is left. */
  kill(graceMs: number): Promise<void>;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function spawnGroup(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onLine: (stream: "stdout" | "stderr", line: string) => void },
): GroupProcess {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let spawnError: Error | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.on("error", (err) => {
      spawnError = err;
      opts.onLine("stderr", `cannot start ${cmd}: ${err.message}`);
      resolve({ code: 127, signal: null });
    });
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream], crlfDelay: Infinity }).on("line", (line) => opts.onLine(stream, line));
  }
  const pid = child.pid ?? -1;
  return {
    pid,
    exited,
    async kill(graceMs) {
      if (pid <= 0 || spawnError) return;
      await signalGroupAndWait(pid, graceMs);
    },
  };
}

/** SIGTERM to the group, SIGKILL after graceMs to whatever is left; resolves when none is left. */
export async function signalGroupAndWait(pgid: number, graceMs: number): Promise<void> {
  signalGroup(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(25);
  if (groupAlive(pgid)) signalGroup(pgid, "SIGKILL");
  // SIGKILL cannot be ignored; the bound only guards against a process stuck in the kernel.
  for (let i = 0; i < 200 && groupAlive(pgid); i++) await sleep(25);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * Whether a process of the group is still running. On Linux, /proc tells zombies apart (an
 * orphaned grandchild stays a zombie until init reaps it, and kill(-pgid, 0) still counts it);
 * elsewhere kill(-pgid, 0) is the test.
 */
export function groupAlive(pgid: number): boolean {
  if (process.platform === "linux") {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = processStat(Number(entry));
      if (stat && stat.pgrp === pgid && stat.state !== "Z" && stat.state !== "X") return true;
    }
    return false;
  }
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process's start time (Linux: clock ticks since boot, /proc/<pid>/stat field 22), to tell a reused pid apart; null elsewhere or when gone. */
export function processStartTime(pid: number): string | null {
  return processStat(pid)?.started ?? null;
}

/** State, process group and start time from /proc/<pid>/stat (Linux); null when the process is gone. */
export function processStat(pid: number): { state: string; pgrp: number; started: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state), rest[2] field 5 (pgrp), rest[19] field 22 (starttime).
    return { state: rest[0] ?? "", pgrp: Number(rest[2]), started: rest[19] ?? "" };
  } catch {
    return null;
  }
}
