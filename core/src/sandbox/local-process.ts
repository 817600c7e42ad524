// Process plumbing for the local driver: start a detached sandbox, recognise it again from
// another process (pid + start time, so a recycled pid is never mistaken for it), kill it, and a
// lock file so two workers on one machine never start the same sandbox twice.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import net from "node:net";
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

/** An fd handed to the launched process at 3, 4, …: bwrap's --info-fd, data on a pipe, or one of ours. */
export type LaunchFd = "info" | { data: string | Buffer } | number;

// Closes every fd from $1 up before exec: anything this process inherited without CLOEXEC (a
// supervisor's pipe, fd 251 from `keel up`) would otherwise reach bwrap, PID 1 and every command.
// Node's spawn only sets up the fds it is given. bash, not sh: dash cannot name fds above 9.
const CLOSE_FDS = 'keep=$1; shift; for f in /proc/$$/fd/*; do f=${f##*/}; [ "$f" -ge "$keep" ] && eval "exec $f>&-"; done; exec "$@"';
export const LAUNCH_SHELL = "/bin/bash";
// The whole environment of every process launched for a sandbox (bwrap, the unsandboxed runtime,
// the egress proxy). Never the worker's own: it holds DATABASE_URL, KEEL_SECRETS_KEY and the
// model's key, and a process running as the sandbox's uid is readable by that uid's commands
// (/proc/PID/environ) wherever no PID namespace stands between them: the egress proxy, and the
// runtime when the operator allowed unsandboxed execution. NODE_OPTIONS or NODE_EXTRA_CA_CERTS
// meant for the worker would also change how the runtime starts. Commands get the env the
// driver passes in the runtime's config, never this one.
export const LAUNCH_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" });

/**
 * Starts `cmd` in its own session (setsid), not tied to this process: the sandbox outlives the
 * worker that started it. `stdin` is written and closed (the runtime's config: token, secrets).
 * `fds` land at 3, 4, … and nothing else above 2 stays open. With an "info" fd, bubblewrap
 * reports the host pid of the sandbox's PID-namespace init there; killing that pid kills every
 * process in the sandbox.
 */
export async function launchDetached(
  cmd: string,
  args: string[],
  opts: { stdin: string; logFd: number; fds?: LaunchFd[]; cwd?: string; uid?: number; gid?: number },
): Promise<Launched> {
  const fds = opts.fds ?? [];
  const child = spawn(LAUNCH_SHELL, ["-c", CLOSE_FDS, "keel-launch", String(3 + fds.length), cmd, ...args], {
    detached: true,
    cwd: opts.cwd ?? "/",
    env: { ...LAUNCH_ENV } as NodeJS.ProcessEnv,
    stdio: ["pipe", opts.logFd, opts.logFd, ...fds.map((f) => (typeof f === "number" ? f : "pipe"))],
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
  });
  const exited = new Promise<never>((_, reject) => {
    child.once("error", (err) => reject(err));
    child.once("exit", (code, signal) => reject(new Error(`exited early (code ${code}, signal ${signal})`)));
  });
  exited.catch(() => {});
  // A child that dies early closes its ends: that surfaces as `exited`, not as a pipe error.
  for (const s of child.stdio) (s as NodeJS.EventEmitter | null)?.on("error", () => {});
  child.stdin!.end(opts.stdin);
  fds.forEach((f, i) => {
    if (typeof f === "object") (child.stdio[3 + i] as NodeJS.WritableStream).end(f.data);
  });
  let childPid = child.pid!;
  const info = fds.indexOf("info");
  if (info >= 0) {
    const stream = child.stdio[3 + info] as NodeJS.ReadableStream;
    const text = await Promise.race([readJsonObject(stream), exited]);
    childPid = (JSON.parse(text) as { "child-pid": number })["child-pid"];
    (stream as unknown as { destroy(): void }).destroy();
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

/**
 * An execute-only (0111) copy of a host binary under baseDir/.runtime, for the runtime and the
 * sandbox's PID 1: exec of a file its uid cannot read makes the process non-dumpable, so nothing
 * else running as that uid (the sandbox's commands) can ptrace it or open /proc/<pid>/mem, fd,
 * environ or root. Keyed by the binary's path, size and mtime (hashing 100 MB of node per start
 * would cost more than the copy).
 */
export function installExecOnly(baseDir: string, binary: string, name: string): string {
  const real = realpathSync(binary);
  const st = statSync(real);
  const dir = path.join(baseDir, ".runtime");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const key = createHash("sha256").update(`${real}\0${st.size}\0${st.mtimeMs}`).digest("hex").slice(0, 16);
  const file = path.join(dir, `${name}-${key}`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    copyFileSync(real, tmp, constants.COPYFILE_FICLONE);
    chmodSync(tmp, 0o111);
    renameSync(tmp, file);
  }
  return file;
}

/**
 * A listening unix socket made by this process in a directory only it can write, for a child
 * to serve: the child gets the fd (launchDetached's `fds`), then `publish` gives the socket its
 * final name. Clients connect by a path the sandbox cannot replace or point elsewhere. Bound
 * through /proc/self/fd/<dir fd> (sun_path holds 107 bytes, the sandbox dir is deep), under a
 * temporary name: libuv unlinks a server's path when it closes, so the name is moved away first.
 */
export function listenForChild(dir: string, name: string): { fd: number; publish(): void; close(): void } {
  const dirFd = openSync(dir, "r");
  const tmp = `.${name}.${process.pid}.${Date.now()}.tmp`;
  const server = net.createServer();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    server.close();
    closeSync(dirFd);
  };
  try {
    server.listen(`/proc/self/fd/${dirFd}/${tmp}`);
    const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== "number" || fd < 0) throw new Error(`cannot listen on a unix socket in ${dir}`);
    chmodSync(path.join(dir, tmp), 0o600);
    return {
      fd,
      publish: () => {
        renameSync(path.join(dir, tmp), path.join(dir, name));
        close();
      },
      close: () => {
        rmSync(path.join(dir, tmp), { force: true });
        close();
      },
    };
  } catch (err) {
    close();
    throw err;
  }
}
