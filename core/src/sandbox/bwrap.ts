// The bubblewrap command line for one local sandbox. Every namespace is new (user, PID, IPC,
// UTS, mount, network, cgroup); the only host paths inside are read-only system directories,
// the sandbox's own workspace and its runtime socket directory.
import { existsSync, lstatSync, readlinkSync, realpathSync } from "node:fs";
import path from "node:path";

export type BwrapSpec = {
  workspaceDir: string;
  runDir: string;
  etcDir: string;
  runtimeScript: string;
  nodePath: string;
  /**
   * Host directory holding the sandbox's egress proxy socket, bound read-only at
   * INSIDE.egress; the sandbox keeps its own empty network namespace either way.
   */
  egressDir?: string;
  tmpSizeMb: number;
};

/** Where things are inside the sandbox. */
export const INSIDE = { workspace: "/workspace", run: "/run/keel", runtime: "/opt/keel/runtime.mjs", socket: "/run/keel/runtime.sock", egress: "/run/keel-egress", egressSocket: "/run/keel-egress/proxy.sock", egressPort: 3128 } as const;
export const SANDBOX_UID = 1000;

// Only what programs need to run: the dynamic loader's cache, Debian's alternatives symlinks
// (/usr/bin/awk → /etc/alternatives/awk), CA certificates, time zone. No passwd/shadow/hosts of
// the host: passwd and group are generated per sandbox. No resolv.conf: names are resolved by
// the egress proxy on the host, never inside.
const ETC_RO = ["alternatives", "ssl", "ca-certificates", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "mime.types"];

export function bwrapArgs(spec: BwrapSpec): string[] {
  const a: string[] = [
    // Always a new, empty network namespace (loopback only): egress, when the policy allows
    // some, goes through the host-side proxy's socket bound in below.
    "--unshare-all",
    "--unshare-user",
    "--uid", String(SANDBOX_UID), "--gid", String(SANDBOX_UID),
    "--hostname", "sandbox",
    "--cap-drop", "ALL",
    // Its own session: a command cannot inject keystrokes into a terminal through TIOCSTI.
    "--new-session",
    "--ro-bind", "/usr", "/usr",
    ...topLevelSystemDirs(),
    "--proc", "/proc",
    "--dev", "/dev",
    "--size", String(spec.tmpSizeMb * 1024 * 1024), "--tmpfs", "/tmp",
    "--dir", "/etc",
  ];
  for (const name of ETC_RO) a.push("--ro-bind-try", `/etc/${name}`, `/etc/${name}`);
  a.push("--ro-bind", path.join(spec.etcDir, "passwd"), "/etc/passwd", "--ro-bind", path.join(spec.etcDir, "group"), "/etc/group");
  const node = realpathSync(spec.nodePath);
  if (!node.startsWith("/usr/")) {
    // A node outside /usr (nvm, a tarball): bind its install prefix read-only at the same path.
    const prefix = path.dirname(path.dirname(node));
    a.push("--ro-bind", prefix, prefix);
  }
  a.push(
    "--ro-bind", spec.runtimeScript, INSIDE.runtime,
    "--bind", spec.workspaceDir, INSIDE.workspace,
    "--bind", spec.runDir, INSIDE.run,
    ...(spec.egressDir ? ["--ro-bind", spec.egressDir, INSIDE.egress] : []),
    "--chdir", INSIDE.workspace,
    "--clearenv",
    "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
    "--setenv", "HOME", INSIDE.workspace,
    "--",
    node, INSIDE.runtime, "--socket", INSIDE.socket, "--workspace", INSIDE.workspace, "--config-stdin",
  );
  return a;
}

/** /bin, /lib… are symlinks into /usr on merged-/usr systems, real directories elsewhere. */
function topLevelSystemDirs(): string[] {
  const out: string[] = [];
  for (const d of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    if (!existsSync(d)) continue;
    const st = lstatSync(d);
    if (st.isSymbolicLink()) out.push("--symlink", readlinkSync(d), d);
    else if (st.isDirectory()) out.push("--ro-bind", d, d);
  }
  return out;
}

export function passwdFiles(): { passwd: string; group: string } {
  return {
    passwd: `sandbox:x:${SANDBOX_UID}:${SANDBOX_UID}:sandbox:${INSIDE.workspace}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `sandbox:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`,
  };
}
