// One memory cgroup per local sandbox, where the host lets this process make one (issue 14 item 3).
// RLIMIT_AS bounds one process; tmpfs pages and many processes add up past it. A memory cgroup
// bounds everything the sandbox's processes charge together: heap, page cache and tmpfs (/tmp,
// /dev/shm) pages they write. Over the limit, the kernel reclaims, then its OOM killer kills a
// process of that sandbox only, never PostgreSQL or Keel.
//
// Where: <memory hierarchy>/<this process's own cgroup>/keel/<sandboxId>, so a limit set on Keel
// itself (a container's) still holds over its sandboxes. cgroup v1 (memory.limit_in_bytes, and
// memory.memsw.limit_in_bytes when swap accounting is on, so the limit is not bypassed by swap)
// or v2 (memory.max, memory.swap.max = 0). The group's path is kept in sandbox.json, so the worker
// that stops the sandbox finds it whichever worker made it.
//
// Where the host does not allow it (no memory controller, a read-only /sys/fs/cgroup, v2 without
// delegation), probe() says why and the driver falls back to rlimits, documented in README.md.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../logger.js";
import type { ExecResult } from "./driver.js";
import { SandboxUnavailableError } from "./errors.js";
import { sleep } from "./local-process.js";

export type CgroupMode = "cgroup-v1" | "cgroup-v2";
export type CgroupProbe = { ok: true; mode: CgroupMode; parent: string } | { ok: false; reason: string };

export class MemoryCgroups {
  private probed: CgroupProbe | undefined;
  /** `root`: where cgroup file systems are mounted (a test may point it elsewhere). */
  constructor(private readonly root = "/sys/fs/cgroup") {}

  probe(): CgroupProbe {
    this.probed ??= this.tryProbe();
    return this.probed;
  }

  /** Creates the sandbox's group with its limit; returns its path. Throws when the probe failed. */
  create(name: string, limitBytes: number): string {
    const p = this.probe();
    if (!p.ok) throw new Error(`no memory cgroup: ${p.reason}`);
    const group = path.join(p.parent, name);
    mkdirSync(group, { recursive: true });
    const bytes = String(Math.floor(limitBytes));
    if (p.mode === "cgroup-v1") {
      // memsw may not go below limit_in_bytes: on a smaller new limit, set memsw's first. On a
      // fresh group both are unlimited, so limit first, then memsw.
      writeFileSync(path.join(group, "memory.limit_in_bytes"), bytes);
      if (existsSync(path.join(group, "memory.memsw.limit_in_bytes"))) writeFileSync(path.join(group, "memory.memsw.limit_in_bytes"), bytes);
    } else {
      writeFileSync(path.join(group, "memory.max"), bytes);
      if (existsSync(path.join(group, "memory.swap.max"))) writeFileSync(path.join(group, "memory.swap.max"), "0");
    }
    return group;
  }

  /**
   * Moves processes into the group: `pids` (bwrap and the sandbox's init, known) first, then every
   * descendant. Children forked after their parent moved are born inside, so one scan of /proc
   * after the known ones moved finds every process forked before (the runtime, still booting,
   * forks nothing yet). The scan is the cost (~10 ms with 300 processes under load).
   */
  enter(group: string, ...pids: number[]): void {
    const move = (list: number[]) => {
      for (const pid of list) {
        try {
          writeFileSync(path.join(group, "cgroup.procs"), String(pid));
        } catch (err) {
          // Gone in between: nothing to limit. Anything else means the sandbox is not bounded.
          if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
        }
      }
    };
    move(pids);
    move(descendants(pids));
  }

  /** Processes the kernel's OOM killer killed in this group so far (0 when unreadable). */
  oomKills(group: string): number {
    for (const file of ["memory.oom_control", "memory.events"]) {
      try {
        const m = /^oom_kill (\d+)$/m.exec(readFileSync(path.join(group, file), "utf8"));
        if (m) return Number(m[1]);
      } catch {
        /* the other version's file */
      }
    }
    return 0;
  }

  /** Removes the group once its processes are gone (a dying PID namespace takes a moment). */
  async remove(group: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        rmdirSync(group);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return;
        if (code !== "EBUSY" || Date.now() > deadline) throw err;
        await sleep(20);
      }
    }
  }

  private tryProbe(): CgroupProbe {
    let own: string;
    try {
      own = readFileSync("/proc/self/cgroup", "utf8");
    } catch (err) {
      return { ok: false, reason: `cannot read /proc/self/cgroup: ${(err as Error).message}` };
    }
    const v1 = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(own);
    const v1Mount = path.join(this.root, "memory");
    if (v1 && existsSync(path.join(v1Mount, "memory.limit_in_bytes"))) {
      return this.tryParent("cgroup-v1", path.join(v1Mount, v1[1]!, "keel"), "memory.limit_in_bytes");
    }
    const v2 = /^0::(.*)$/m.exec(own);
    if (v2 && existsSync(path.join(this.root, "cgroup.controllers"))) {
      const mine = path.join(this.root, v2[1]!);
      try {
        // v2 hands a controller to children only through the parent's subtree_control, which a
        // group holding processes (ours) may refuse (EBUSY): then there is no delegation to use.
        writeFileSync(path.join(mine, "cgroup.subtree_control"), "+memory");
        mkdirSync(path.join(mine, "keel"), { recursive: true });
        writeFileSync(path.join(mine, "keel", "cgroup.subtree_control"), "+memory");
      } catch (err) {
        return { ok: false, reason: `cgroup v2 memory controller not delegated to ${mine}: ${(err as Error).message}` };
      }
      return this.tryParent("cgroup-v2", path.join(mine, "keel"), "cgroup.controllers");
    }
    return { ok: false, reason: "no cgroup memory controller is mounted" };
  }

  private tryParent(mode: CgroupMode, parent: string, marker: string): CgroupProbe {
    try {
      mkdirSync(parent, { recursive: true });
      // A probe child proves we may create groups and set a limit, not only that the dir exists.
      const probe = path.join(parent, `probe-${process.pid}`);
      mkdirSync(probe, { recursive: true });
      rmdirSync(probe);
      if (!existsSync(path.join(parent, marker))) return { ok: false, reason: `${parent} is not a memory cgroup` };
      return { ok: true, mode, parent };
    } catch (err) {
      return { ok: false, reason: `cannot create memory cgroups under ${parent}: ${(err as Error).message}` };
    }
  }
}

/** Every live descendant of these processes, each once (one pass over /proc/<pid>/stat parent links). */
function descendants(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      /* exited while we looked */
    }
  }
  const seen = new Set(roots);
  const out: number[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/**
 * Puts a just-launched sandbox (bwrap's pid and everything under it) in its own group limited to
 * memoryMb, and records the group on it. Where the host allows no cgroup, logs once why: memory is
 * then bounded per process only (RLIMIT_AS × RLIMIT_NPROC, plus the tmpfs sizes; README.md).
 */
export function limitMemory(
  cgroups: MemoryCgroups,
  rec: { sandboxId: string; pid?: number; childPid?: number; cgroup?: string },
  memoryMb: number,
  log: Logger,
): void {
  const p = cgroups.probe();
  if (!p.ok) {
    if (!warned.has(cgroups)) log.warn({ reason: p.reason }, "no memory cgroup for sandboxes: memory bounded per process only");
    warned.add(cgroups);
    return;
  }
  const group = cgroups.create(rec.sandboxId, memoryMb * 1024 * 1024);
  rec.cgroup = group;
  cgroups.enter(group, ...[rec.pid, rec.childPid].filter((p): p is number => p !== undefined));
}
const warned = new WeakSet<MemoryCgroups>();

/**
 * Runs one exec and names the memory limit when the group's OOM killer struck during it: the
 * command dies of a plain SIGKILL, which says nothing by itself. If the killer took the runtime
 * (the call fails), the error says so; the next acquire starts a new one.
 */
export async function execWithOomCheck(cgroups: MemoryCgroups, group: string, run: () => Promise<ExecResult>): Promise<ExecResult> {
  const before = cgroups.oomKills(group);
  let r: ExecResult;
  try {
    r = await run();
  } catch (err) {
    if (cgroups.oomKills(group) > before)
      throw new SandboxUnavailableError(
        "the sandbox ran out of memory (its memory limit) and its runtime was stopped; the next call starts it again",
        { limit: "memory" },
        { cause: err },
      );
    throw err;
  }
  const killed = r.signal === "SIGKILL" || r.exitCode === 137;
  return killed && !r.limit && cgroups.oomKills(group) > before ? { ...r, limit: "memory" } : r;
}
