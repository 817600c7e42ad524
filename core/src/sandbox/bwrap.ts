// The bubblewrap command line of one local sandbox. Every namespace is new (user, PID, IPC,
// UTS, mount, network, cgroup); read-only root and system dirs, size-capped tmpfs /tmp and
// /dev/shm, the workspace; no /usr/local; /proc/cmdline, /proc/stat and /proc/loadavg masked;
// `--disable-userns` and a seccomp filter (seccomp.ts). The argument list goes to bwrap on a pipe
// (`--args`), so no host path, team or session id shows in any process's cmdline.
//
// The runtime is kept apart from the commands it runs, which share its uid (one uid is mapped in
// an unprivileged user namespace) and PID namespace:
// - its listening socket is made by the host in a host-only directory and passed in as an fd
//   (no path inside to replace, nothing to follow on the host);
// - its exec ledger and fences live in a host directory passed in as an fd, never mounted
//   (not in the workspace, no path inside);
// - PID 1 (a reaper shell) and the runtime run from execute-only copies of sh and node, which
//   makes both non-dumpable: a command cannot ptrace them or open their /proc/<pid>/{mem,
//   environ,fd,root}, so the token, the socket and the state dir fd are out of its reach; seccomp
//   also denies ptrace, process_vm_* and pidfd_getfd.
// Not a PID namespace of its own: a nested procfs mount is refused by the kernel (bwrap covers
// parts of /proc, mnt_too_revealing), and every bwrap process marks itself dumpable, so a
// per-command inner bwrap would expose the outer mount tree through /proc/<bwrap pid>/root.
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LAUNCH_SHELL } from "./local-process.js";

export type BwrapSpec = {
  workspaceDir: string;
  /** Host dir with passwd, group and the /proc masks (procMaskFiles). */
  etcDir: string;
  runtimeScript: string;
  /** Execute-only copies (installExecOnly) the runtime and PID 1 run from. */
  runtimeNode: string;
  initShell: string;
  /** The node commands see (the host's, read-only at its own path when outside /usr). */
  nodePath: string;
  /**
   * Host directory holding the sandbox's egress proxy socket, bound read-only at
   * INSIDE.egress; the sandbox keeps its own empty network namespace either way.
   */
  egressDir?: string;
  tmpSizeMb: number;
  /** fd numbers in bwrap (and so in the runtime) of what the host passes in. */
  fds: { seccomp: number; listen: number; state: number };
};

/** Where things are inside the sandbox. */
export const INSIDE = {
  workspace: "/workspace",
  runtime: "/opt/keel/runtime.mjs",
  node: "/opt/keel/node",
  init: "/opt/keel/init",
  egress: "/run/keel-egress",
  egressSocket: "/run/keel-egress/proxy.sock",
  egressPort: 3128,
} as const;
export const SANDBOX_UID = 1000;

// Only what programs need to run: the dynamic loader's cache, Debian's alternatives symlinks
// (/usr/bin/awk → /etc/alternatives/awk), CA certificates, time zone. No passwd/shadow/hosts of
// the host: passwd and group are generated per sandbox. No resolv.conf: names are resolved by
// the egress proxy on the host, never inside.
const ETC_RO = ["alternatives", "ssl", "ca-certificates", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "mime.types"];
/** Host-wide /proc files replaced by neutral ones (file in etcDir → /proc path). */
const PROC_MASKS = { "proc-empty": "/proc/cmdline", "proc-stat": "/proc/stat", "proc-loadavg": "/proc/loadavg" } as const;

/**
 * `options` go to bwrap through `--args FD` (they name host paths); `command` stays on its
 * command line (bwrap takes the command only from there), and names nothing of the host's.
 */
export function bwrapArgs(spec: BwrapSpec): { options: string[]; command: string[] } {
  const mb = (n: number) => String(n * 1024 * 1024);
  const a: string[] = [
    // Always a new, empty network namespace (loopback only): egress, when the policy allows
    // some, goes through the host-side proxy's socket bound in below.
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--uid",
    String(SANDBOX_UID),
    "--gid",
    String(SANDBOX_UID),
    "--hostname",
    "sandbox",
    "--cap-drop",
    "ALL",
    // Its own session: a command cannot inject keystrokes into a terminal through TIOCSTI.
    "--new-session",
    // PID 1 is our non-dumpable reaper shell, not bwrap's own (dumpable) init.
    "--as-pid-1",
    "--seccomp",
    String(spec.fds.seccomp),
    ...systemDirs(spec.nodePath, spec.runtimeNode),
    "--proc",
    "/proc",
  ];
  for (const [file, dest] of Object.entries(PROC_MASKS)) a.push("--ro-bind", path.join(spec.etcDir, file), dest);
  a.push("--dev", "/dev", "--size", mb(spec.tmpSizeMb), "--tmpfs", "/dev/shm", "--size", mb(spec.tmpSizeMb), "--tmpfs", "/tmp", "--dir", "/etc");
  for (const name of ETC_RO) a.push("--ro-bind-try", `/etc/${name}`, `/etc/${name}`);
  a.push(
    "--ro-bind",
    path.join(spec.etcDir, "passwd"),
    "/etc/passwd",
    "--ro-bind",
    path.join(spec.etcDir, "group"),
    "/etc/group",
    "--ro-bind",
    spec.runtimeNode,
    INSIDE.node,
    "--ro-bind",
    spec.initShell,
    INSIDE.init,
    "--ro-bind",
    spec.runtimeScript,
    INSIDE.runtime,
    "--bind",
    spec.workspaceDir,
    INSIDE.workspace,
    ...(spec.egressDir ? ["--ro-bind", spec.egressDir, INSIDE.egress] : []),
    // Nothing writable but the workspace and the sized tmpfs mounts.
    "--remount-ro",
    "/dev",
    "--remount-ro",
    "/",
    "--chdir",
    INSIDE.workspace,
    "--clearenv",
    "--setenv",
    "PATH",
    "/usr/local/bin:/usr/bin:/bin",
    "--setenv",
    "HOME",
    INSIDE.workspace,
  );
  return { options: a, command: [INSIDE.init, "-c", runtimeCommand(spec.fds), "keel-init"] };
}

/**
 * PID 1's script: the runtime in the background and `wait`, which reaps every orphan in the
 * sandbox and returns when the runtime exits (then the sandbox ends). The runtime's stdin (the
 * config) goes through fd 3: dash gives a background job /dev/null even for `<&0`.
 */
function runtimeCommand(fds: BwrapSpec["fds"]): string {
  return `exec 3<&0; ${INSIDE.node} ${INSIDE.runtime} --listen-fd ${fds.listen} --state-fd ${fds.state} --workspace ${INSIDE.workspace} --config-stdin <&3 3<&- & exec 3<&-; wait`;
}

/** The contents of the /proc masks: nothing of the host's boot line, load or CPU counters. */
export function procMaskFiles(cpus = os.cpus().length, bootTime = hostBootTime()): Record<keyof typeof PROC_MASKS, string> {
  const zeros = " 0 0 0 0 0 0 0 0 0 0";
  const cpuLines = Array.from({ length: Math.max(1, cpus) }, (_, i) => `cpu${i}${zeros}`);
  return {
    "proc-empty": "",
    // btime stays (ps computes start times from it); counters are zero.
    "proc-stat": [`cpu ${zeros}`, ...cpuLines, "intr 0", "ctxt 0", `btime ${bootTime}`, "processes 0", "procs_running 1", "procs_blocked 0", ""].join("\n"),
    "proc-loadavg": "0.00 0.00 0.00 1/1 1\n",
  };
}

/**
 * /usr read-only with an empty /usr/local; /bin, /lib… as symlinks into /usr on merged-/usr
 * systems (real directories elsewhere). A node outside /usr or in /usr/local is bound alone at
 * its own path so commands can still run it: its execute-only copy, which the sandbox's uid can
 * reach wherever the original lives (under /root, say).
 */
function systemDirs(nodePath: string, nodeCopy: string): string[] {
  const out = ["--ro-bind", "/usr", "/usr"];
  if (existsSync("/usr/local")) out.push("--tmpfs", "/usr/local", "--remount-ro", "/usr/local");
  for (const d of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    if (!existsSync(d)) continue;
    const st = lstatSync(d);
    if (st.isSymbolicLink()) out.push("--symlink", readlinkSync(d), d);
    else if (st.isDirectory()) out.push("--ro-bind", d, d);
  }
  const node = realpathSync(nodePath);
  if (!node.startsWith("/usr/") || node.startsWith("/usr/local/")) out.push("--ro-bind", nodeCopy, node);
  return out;
}

export function passwdFiles(): { passwd: string; group: string } {
  return {
    passwd: `sandbox:x:${SANDBOX_UID}:${SANDBOX_UID}:sandbox:${INSIDE.workspace}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `sandbox:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`,
  };
}

/** bwrap ≥ 0.8 for --disable-userns. */
const MIN_BWRAP: [number, number] = [0, 8];

/** Why bubblewrap cannot run hardened sandboxes here, or undefined when it can. */
export function bwrapProblem(bwrap: string, ids: { uid?: number; gid?: number }): string | undefined {
  const v = spawnSync(bwrap, ["--version"], { encoding: "utf8" });
  if (v.error) return `${bwrap} not found (install it: apt-get install -y bubblewrap)`;
  const m = /(\d+)\.(\d+)/.exec(v.stdout);
  if (!m || Number(m[1]) < MIN_BWRAP[0] || (Number(m[1]) === MIN_BWRAP[0] && Number(m[2]) < MIN_BWRAP[1])) {
    return `${v.stdout.trim() || "bubblewrap (unknown version)"} is too old: sandboxes need ${MIN_BWRAP.join(".")} or newer (--disable-userns)`;
  }
  if (!existsSync(LAUNCH_SHELL)) return `${LAUNCH_SHELL} is missing (the sandbox launcher needs bash)`;
  const r = spawnSync(bwrap, ["--unshare-all", "--unshare-user", "--disable-userns", "--ro-bind", "/", "/", "true"], { encoding: "utf8", ...ids });
  return r.status === 0 ? undefined : `bubblewrap cannot create namespaces: ${r.stderr.trim()}`;
}

let bootTime: number | undefined;
function hostBootTime(): number {
  bootTime ??= Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1] ?? Math.floor(Date.now() / 1000 - os.uptime()));
  return bootTime;
}
