// Issue 14: a local sandbox holds against the code it runs (real bubblewrap, real processes).
// The runtime that serves a sandbox (its socket, token, exec ledger and fences) is out of the
// commands' reach; host fds do not leak in; the kernel surface is narrowed (seccomp, no nested
// user namespaces); each sandbox has its own host uid; little of the host shows inside.
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, openSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { bundleForNode } from "../support/bundle.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reapSandboxes } from "../../src/sandbox/reaper.js";
import { seccompProgram } from "../../src/sandbox/seccomp.js";
import { policy, useSandboxEnv } from "./helpers.js";

const env = useSandboxEnv();
const team = () => `team-${randomUUID().slice(0, 8)}`;
const session = () => randomUUID();
let hostDir: string;
let hostSocket: string;
const hostSeen: string[] = [];
let hostServer: http.Server;

beforeAll(async () => {
  // A root-only host socket, standing in for any service on the host (issue 14, item 2).
  hostDir = await mkdtemp(path.join(os.tmpdir(), "keel-hostsock-"));
  hostSocket = path.join(hostDir, "private.sock");
  hostServer = http.createServer((req, res) => {
    hostSeen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
    res.end(JSON.stringify({ path: "x", content: "FROM THE HOST SOCKET", encoding: "utf8", sizeBytes: 1, truncated: false }));
  });
  await new Promise<void>((r) => hostServer.listen(hostSocket, r));
});
afterAll(async () => {
  await new Promise((r) => hostServer?.close(r));
  if (hostDir) await rm(hostDir, { recursive: true, force: true });
});

/** Runs a Node script inside the sandbox (as a file: no quoting games). */
async function nodeInside(
  d: ReturnType<typeof env.driver>,
  h: Awaited<ReturnType<ReturnType<typeof env.driver>["acquire"]>>,
  script: string,
  opts: { background?: boolean } = {},
) {
  const name = `.probe-${randomUUID().slice(0, 8)}.js`;
  await d.writeFile(h, name, script);
  // A daemon: its own session, and the command waits until it has written its first line (the
  // command's process group is killed when it ends; the daemon must be out of it by then).
  const command = opts.background ? `setsid node ${name} > /dev/null 2>&1 < /dev/null & while [ ! -s attack.log ]; do sleep 0.05; done` : `node ${name}`;
  return d.exec(h, { command, timeoutMs: 30_000 });
}

describe("the runtime is out of the commands' reach", () => {
  it("a daemon started by exec cannot take over the runtime's socket; worker, reaper and file views still reach the runtime", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), team(), policy());
    await d.writeFile(h, "notes.txt", "the real file");
    // The attack from the issue: move the socket aside, listen on its path, answer 200 non-JSON.
    await nodeInside(
      d,
      h,
      `
      const fs = require("fs"), net = require("net"), http = require("http");
      const log = (m) => fs.appendFileSync("/workspace/attack.log", m + "\\n");
      const p = "/run/keel/runtime.sock";
      try { fs.renameSync(p, "/run/keel/real.sock"); } catch (e) { log("rename " + e.code); }
      const s = http.createServer((req, res) => { log("REQUEST " + req.url + " " + req.headers.authorization); res.end("FORGED"); });
      s.on("error", (e) => { log("listen " + e.code); process.exit(0); });
      s.listen(p, () => log("listening"));
    `,
      { background: true },
    );
    // New connections, not ones kept alive from before the attack.
    http.globalAgent.destroy();
    expect((await d.exec(h, { command: "echo from the runtime" })).stdout).toBe("from the runtime\n");
    const reaped = await reapSandboxes({ driver: d, liveSessions: async (ids) => new Set(ids) });
    expect(reaped.errors).toEqual([]);
    expect((await d.readFile(h, "notes.txt")).content).toBe("the real file");
    const log = (await d.readFile(h, "attack.log")).content;
    expect(log).not.toMatch(/REQUEST|listening/);
    expect(log).toMatch(/rename ENOENT/);
  });

  it("a symlink where the socket was is never followed to a host socket", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), team(), policy());
    await d.writeFile(h, "notes.txt", "the real file");
    const r = await d.exec(h, { command: `mv /run/keel/runtime.sock /run/keel/aside.sock; ln -sf ${hostSocket} /run/keel/runtime.sock; echo done` });
    expect(r.stdout).toBe("done\n");
    // A new connection, not one kept alive from before the swap.
    http.globalAgent.destroy();
    expect((await d.readFile(h, "notes.txt")).content).toBe("the real file");
    expect(hostSeen).toEqual([]);
    // Host side too: even where the socket is, a symlink is refused, not followed.
    const sock = path.join(env.baseDir, h.teamId, h.sessionId, "host", "runtime.sock");
    await rename(sock, `${sock}.real`);
    const { symlink } = await import("node:fs/promises");
    await symlink(hostSocket, sock);
    await expect(d.readFile(h, "notes.txt")).rejects.toThrow(/is not a socket made by this process's user/);
    expect(hostSeen).toEqual([]);
    await rm(sock);
    await rename(`${sock}.real`, sock);
  });

  it("a bad answer behind the socket is a clean error for the worker and does not hang the reaper", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), team(), policy());
    const sock = path.join(env.baseDir, h.teamId, h.sessionId, "host", "runtime.sock");
    await rename(sock, `${sock}.real`);
    const bad = http.createServer((req, res) => (req.url === "/healthz" ? undefined : res.end("not json")));
    // Through the directory's fd: the path is longer than a unix socket address holds.
    const dirFd = openSync(path.dirname(sock), "r");
    await new Promise<void>((r) => bad.listen(`/proc/self/fd/${dirFd}/runtime.sock`, r));
    closeSync(dirFd);
    // Kept-alive connections to the real runtime would serve the next calls: drop them.
    http.globalAgent.destroy();
    try {
      await expect(d.exec(h, { command: "true" })).rejects.toThrow(/not JSON/);
      // Its health check never answers: list() gives up after its deadline and the reaper settles.
      const reaped = await reapSandboxes({ driver: d, liveSessions: async (ids) => new Set(ids) });
      expect(reaped.errors).toEqual([]);
    } finally {
      bad.closeAllConnections();
      await new Promise((r) => bad.close(r));
      await rename(`${sock}.real`, sock);
    }
  });

  it("ignores a ledger record planted by a command, and keeps ledger, socket and runtime memory out of reach", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), team(), policy());
    // The planted record of the issue, where the runtime used to keep its ledger.
    const planted = await nodeInside(
      d,
      h,
      `
      const fs = require("fs"), crypto = require("crypto");
      const dir = "/workspace/.keel/exec"; fs.mkdirSync(dir, { recursive: true });
      const file = dir + "/" + crypto.createHash("sha256").update("planted-1").digest("hex") + ".json";
      const result = { exitCode: 0, signal: null, stdout: "FORGED: all tests passed\\n", stderr: "", truncated: false, timedOut: false, durationMs: 1 };
      fs.writeFileSync(file, JSON.stringify({ key: "planted-1", status: "done", startedAt: Date.now(), result }));
      console.log("planted");
    `,
    );
    expect(planted.stdout).toBe("planted\n");
    const r = await d.exec(h, { command: "echo really ran", idempotencyKey: "planted-1" });
    expect(r.stdout).toBe("really ran\n");
    // No path leads to the runtime: no unix socket of it in this network namespace, none in the
    // file system, none through another process's fds; the runtime's memory and fds are closed.
    const probe = await nodeInside(
      d,
      h,
      `
      const fs = require("fs"), http = require("http");
      const out = { sockets: [], answered: [], runtimePids: [], opened: [] };
      for (const line of fs.readFileSync("/proc/net/unix", "utf8").split("\\n").slice(1)) {
        const p = line.trim().split(/\\s+/)[7]; if (p && p.startsWith("/")) out.sockets.push(p);
      }
      for (const pid of fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {
        const cmd = fs.readFileSync("/proc/" + pid + "/cmdline", "utf8");
        if (cmd.includes("runtime.mjs") && !cmd.includes(".probe-")) out.runtimePids.push(pid);
        try { for (const fd of fs.readdirSync("/proc/" + pid + "/fd")) { const t = fs.readlinkSync("/proc/" + pid + "/fd/" + fd); if (t.startsWith("socket:") && pid !== String(process.pid)) out.sockets.push("/proc/" + pid + "/fd/" + fd); } } catch {}
        for (const f of ["mem", "environ"]) { try { fs.closeSync(fs.openSync("/proc/" + pid + "/" + f, "r")); if (cmd.includes("runtime.mjs") && !cmd.includes(".probe-")) out.opened.push(pid + "/" + f); } catch {} }
      }
      const body = JSON.stringify({ command: "touch /workspace/pwned", epoch: Number.MAX_SAFE_INTEGER, fenceKey: "run-x" });
      let left = out.sockets.length;
      const done = () => { if (--left <= 0) { console.log(JSON.stringify(out)); process.exit(0); } };
      if (left === 0) { left = 1; done(); }
      for (const s of out.sockets) {
        const req = http.request({ socketPath: s, method: "POST", path: "/exec", headers: { "content-type": "application/json" }, timeout: 2000 }, (res) => { out.answered.push(s + " " + res.statusCode); res.resume(); res.on("end", done); });
        req.on("error", done); req.on("timeout", () => req.destroy());
        req.end(body);
      }
    `,
    );
    const seen = JSON.parse(probe.stdout) as { sockets: string[]; answered: string[]; runtimePids: string[]; opened: string[] };
    expect(seen.runtimePids.length).toBeGreaterThan(0);
    expect(seen.opened).toEqual([]);
    expect(seen.answered).toEqual([]);
    expect((await d.listFiles(h, ".")).entries.map((e) => e.path)).not.toContain("pwned");
    // The run's fence was not raised from inside: epoch 5 is still accepted.
    expect((await d.exec(h, { command: "echo fenced", epoch: 5n, fenceKey: "run-x" })).stdout).toBe("fenced\n");
  });
});

describe("what reaches a sandbox from the host", () => {
  it("no host fd leaks into a sandbox (a worker's inherited fd 251)", async () => {
    const bundle = path.resolve(import.meta.dirname, `../../../.tmp/sandbox-fd-child-${process.pid}.mjs`);
    try {
      await bundleForNode(path.join(import.meta.dirname, "fd-child.ts"), bundle);
      const stdio = ["ignore", "pipe", "inherit", ...Array.from({ length: 248 }, () => "ignore" as const), "pipe"] as const;
      const child = spawn(process.execPath, [bundle, env.baseDir, env.runtimeScript, team(), session()], {
        stdio: stdio as unknown as ("pipe" | "ignore" | "inherit")[],
      });
      let out = "";
      child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((r) => child.once("exit", r));
      expect(code).toBe(0);
      const fds = (JSON.parse(out) as { inside: string }).inside
        .trim()
        .split("\n")
        .map((l) => Number(l.split(" ")[0]));
      // 0-2 and the fd of the shell's own directory listing (3): nothing of the host's.
      expect(fds.filter((fd) => fd > 3)).toEqual([]);
    } finally {
      rmSync(bundle, { force: true });
    }
  });

  it("shows no host paths, ids, boot line, load or CPU counters, and no /usr/local", async () => {
    const d = env.driver();
    const teamId = team();
    const h = await d.acquire(session(), teamId, policy());
    const r = await d.exec(h, {
      command:
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done; echo ---; cat /proc/cmdline; echo ---; cat /proc/loadavg; head -1 /proc/stat; echo ---; ls -A /usr/local | wc -l",
    });
    const [cmdlines, kernel, load, local] = r.stdout.split("---\n");
    expect(cmdlines).not.toContain(teamId);
    expect(cmdlines).not.toContain(h.sessionId);
    expect(cmdlines).not.toContain(env.baseDir);
    expect(kernel).toBe("");
    expect(load).toMatch(/^0\.00 0\.00 0\.00 1\/1 1\ncpu\s+(0 ?)+\n$/);
    expect(local).toBe("0\n");
    // Host side: bwrap's command line names nothing of the sandbox either (ps shows it to all users).
    const rec = await env.record(h.teamId, h.sessionId);
    const hostCmdline = await readFile(`/proc/${rec.pid}/cmdline`, "utf8");
    expect(hostCmdline).toContain("bwrap");
    expect(hostCmdline).not.toContain(teamId);
    expect(hostCmdline).not.toContain(env.baseDir);
  });

  it("has a read-only root and size-capped /tmp and /dev/shm", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), team(), policy({ resources: { memoryMb: 64 } }));
    const r = await d.exec(h, {
      command:
        'touch /x 2>&1; touch /dev/x 2>&1; touch /opt/keel/x 2>&1; for t in /tmp /dev/shm; do head -c 80000000 /dev/zero > $t/big 2>&1 || echo "$t full"; done; touch /workspace/ok && echo workspace ok',
    });
    expect(r.stdout.match(/Read-only file system/g)?.length).toBe(3);
    expect(r.stdout).toContain("/tmp full");
    expect(r.stdout).toContain("/dev/shm full");
    expect(r.stdout).toContain("workspace ok");
  });
});

describe("kernel surface", () => {
  it("refuses nested user namespaces and the syscalls a sandbox never needs", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), team(), policy());
    const userns = await d.exec(h, { command: "unshare -Ur id 2>&1; echo rc=$?" });
    expect(userns.stdout).not.toMatch(/uid=0/);
    // Raw syscalls through perl: errno per call (EPERM 1, ENOSYS 38); fork still works.
    const calls: Record<string, number> = {
      keyctl: 250,
      add_key: 248,
      request_key: 249,
      bpf: 321,
      userfaultfd: 323,
      perf_event_open: 298,
      mount: 165,
      umount2: 166,
      pivot_root: 155,
      unshare: 272,
      setns: 308,
      ptrace: 101,
      process_vm_readv: 310,
      pidfd_getfd: 438,
      kexec_load: 246,
      init_module: 175,
      io_uring_setup: 425,
      clone3: 435,
    };
    const script = Object.entries(calls)
      .map(([n, nr]) => `$r = syscall(${nr}, 0, 0, 0, 0, 0); print "${n} ", ($r == -1 ? $!+0 : "ok"), "\\n";`)
      .join(" ");
    const r = await d.exec(h, { command: ["perl", "-e", script] });
    const got = Object.fromEntries(
      r.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ")),
    );
    for (const n of Object.keys(calls)) expect([n, got[n]]).toEqual([n, n === "clone3" ? "38" : "1"]);
    expect((await d.exec(h, { command: "(echo forked) | cat" })).stdout).toBe("forked\n");
  });
});

describe("kernel surface: the filter and the bwrap it needs", () => {
  it("builds a filter only for architectures it has numbers for, with every jump in range", () => {
    for (const arch of ["x64", "arm64"]) {
      const prog = seccompProgram(arch);
      expect(prog.length % 8).toBe(0);
      // First instruction: load seccomp_data.arch (BPF_LD|BPF_W|BPF_ABS, offset 4).
      expect([prog.readUInt16LE(0), prog.readUInt32LE(4)]).toEqual([0x20, 4]);
    }
    expect(() => seccompProgram("ia32")).toThrow(/no seccomp filter for the ia32 architecture/);
  });

  it("says clearly when bubblewrap is too old for --disable-userns", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "keel-oldbwrap-"));
    try {
      const fake = path.join(dir, "bwrap");
      await writeFile(fake, "#!/bin/sh\necho 'bubblewrap 0.7.0'\n", { mode: 0o755 });
      const h = await env.driver({ bwrapPath: fake }).health();
      expect(h).toMatchObject({ ok: false, message: "bubblewrap 0.7.0 is too old: sandboxes need 0.8 or newer (--disable-userns)" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("one host uid per sandbox", () => {
  it("a process running as another sandbox's uid cannot read this sandbox's workspace, token or runtime", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test needs root (sandboxes get their own uids only when Keel runs as root)");
    const d = env.driver();
    const a = await d.acquire(session(), team(), policy());
    const b = await d.acquire(session(), team(), policy());
    await d.writeFile(a, "secret.txt", "a's data");
    const dirA = path.join(env.baseDir, a.teamId, a.sessionId);
    const uidOf = (p: string) => Number(spawnSync("stat", ["-c", "%u", p], { encoding: "utf8" }).stdout.trim());
    const uidA = uidOf(path.join(dirA, "workspace"));
    const uidB = uidOf(path.join(env.baseDir, b.teamId, b.sessionId, "workspace"));
    expect(uidA).not.toBe(uidB);
    expect(uidA).not.toBe(0);
    const recA = await env.record(a.teamId, a.sessionId);
    // The runtime is PID 1's child (PID 1 is the reaper shell bwrap reports as child-pid).
    let runtimePid: number | undefined;
    for (const p of await env.runtimeProcesses()) {
      const stat = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === recA.childPid) runtimePid = p;
    }
    expect(runtimePid).toBeDefined();
    const asB = (file: string) => spawnSync("cat", [file], { uid: uidB, gid: uidB, encoding: "utf8" });
    for (const f of [path.join(dirA, "workspace", "secret.txt"), path.join(dirA, "token"), `/proc/${runtimePid}/environ`, `/proc/${runtimePid}/mem`]) {
      const r = asB(f);
      expect([f, r.status]).toEqual([f, 1]);
      expect(r.stdout).toBe("");
    }
    // Released: the uid goes back to the range.
    await d.release(a);
    expect(existsSync(path.join(env.baseDir, ".uids", String(uidA)))).toBe(false);
  });
});
