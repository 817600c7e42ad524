// Process plumbing for the local driver: start a detached sandbox, recognise it again from
// another process (pid + start time, so a recycled pid is never mistaken for it), kill it, and a
// lock file so two workers on one machine never start the same sandbox twice.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { open, readFile, unlink } from "node:fs/promises";

/** The kernel's start time of a process (field 22 of /proc/PID/stat), or null if gone/zombie. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function isSameProcessAlive(pid: number | undefined, startTime: string | undefined): boolean {
  return pid !== undefined && startTime !== undefined && processStartTime(pid) === startTime;
}

/** SIGKILL a process if it is still the one we started, and wait until it is gone. */
export async function killProcess(pid: number | undefined, startTime: string | undefined, timeoutMs = 5_000): Promise<void> {
  if (!isSameProcessAlive(pid, startTime)) return;
  try {
    process.kill(pid!, "SIGKILL");
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (isSameProcessAlive(pid, startTime)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not exit after SIGKILL`);
    await sleep(10);
  }
}

export type Launched = { pid: number; childPid: number; childStartTime: string; pidStartTime: string };

/**
 * Starts `cmd` in its own session (setsid), not tied to this process: the sandbox outlives the
 * worker that started it. `stdin` is written and closed (the runtime's config: token, secrets).
 * With `infoFd`, bubblewrap reports the host pid of the sandbox's PID-namespace init there; killing
 * that pid kills every process in the sandbox.
 */
export async function launchDetached(cmd: string, args: string[], opts: { stdin: string; logFd: number; infoFd: boolean; uid?: number; gid?: number }): Promise<Launched> {
  const child = spawn(cmd, opts.infoFd ? ["--info-fd", "3", ...args] : args, {
    detached: true,
    stdio: ["pipe", opts.logFd, opts.logFd, ...(opts.infoFd ? (["pipe"] as const) : [])],
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
  });
  const exited = new Promise<never>((_, reject) => {
    child.once("error", (err) => reject(err));
    child.once("exit", (code, signal) => reject(new Error(`exited early (code ${code}, signal ${signal})`)));
  });
  exited.catch(() => {});
  child.stdin!.end(opts.stdin);
  let childPid = child.pid!;
  if (opts.infoFd) {
    const info = child.stdio[3] as NodeJS.ReadableStream;
    const text = await Promise.race([readJsonObject(info), exited]);
    childPid = (JSON.parse(text) as { "child-pid": number })["child-pid"];
    (info as unknown as { destroy(): void }).destroy();
  }
  child.unref();
  const childStartTime = processStartTime(childPid);
  const pidStartTime = processStartTime(child.pid!);
  if (!childStartTime || !pidStartTime) throw new Error("the sandbox process exited right after starting");
  return { pid: child.pid!, childPid, childStartTime, pidStartTime };
}

function readJsonObject(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    stream.on("data", (c: Buffer) => {
      text += c.toString("utf8");
      // bwrap writes one JSON object and keeps the fd open while the sandbox lives.
      if (text.trimEnd().endsWith("}")) resolve(text);
    });
    stream.on("end", () => (text ? resolve(text) : reject(new Error("bubblewrap closed --info-fd without reporting"))));
    stream.on("error", reject);
  });
}

/**
 * An exclusive lock file holding the owner's pid. A lock whose owner is dead (a SIGKILLed
 * worker) is taken over; a live owner is waited for.
 */
export async function withLockFile<T>(file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(file, "wx", 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(await readFile(file, "utf8").catch(() => ""));
      if (owner && owner !== process.pid && processStartTime(owner) === null) {
        await unlink(file).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`sandbox lock ${file} is held by process ${owner}`);
      await sleep(20);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(file).catch(() => {});
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A private, content-addressed copy of the runtime bundle under baseDir: readable by the
 * sandbox's uid, and a rebuild never changes the file under a running sandbox.
 */
export function installRuntime(baseDir: string, runtimeScript: string, name = "runtime"): string {
  const dir = path.join(baseDir, ".runtime");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const hash = createHash("sha256").update(readFileSync(runtimeScript)).digest("hex").slice(0, 16);
  const file = path.join(dir, `${name}-${hash}.mjs`);
  if (!existsSync(file)) {
    copyFileSync(runtimeScript, `${file}.${process.pid}.tmp`);
    chmodSync(`${file}.${process.pid}.tmp`, 0o644);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return file;
}
