// The seccomp filter every sandbox command runs under (bwrap --seccomp FD takes a compiled
// classic-BPF program). Hand-built here on purpose: no npm package compiles seccomp filters, and
// libseccomp would mean a native addon or a Python/C helper at run time for a ~60-instruction
// program. The program is a plain deny-list, checked by core/test/sandbox/seccomp.test.ts (its
// numbers against libseccomp's own table when scmp_sys_resolver is installed, and each denied
// call really refused inside a sandbox).
//
// Denied with EPERM: what a workload never needs and the kernel's large attack surface (keyrings,
// bpf, userfaultfd, perf, io_uring, mounts, new namespaces, ptrace and cross-process memory,
// kexec, modules, swap, reboot, clocks, …). clone3 answers ENOSYS so libc falls back to clone,
// whose flags a filter can read (clone3 keeps them in memory): clone with any CLONE_NEW* flag is
// denied. A foreign architecture (i386 through int 0x80, x32) kills the process: there is no
// legitimate use in a sandbox and its numbers would bypass the list.

export type SeccompArch = "x64" | "arm64";

const AUDIT_ARCH: Record<SeccompArch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };

/** Denied syscalls by name → number, per architecture (Linux uapi unistd tables). */
export const DENIED_SYSCALLS: Record<SeccompArch, Record<string, number>> = {
  x64: {
    ptrace: 101,
    process_vm_readv: 310,
    process_vm_writev: 311,
    kcmp: 312,
    pidfd_getfd: 438,
    keyctl: 250,
    add_key: 248,
    request_key: 249,
    bpf: 321,
    userfaultfd: 323,
    perf_event_open: 298,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    mount: 165,
    umount2: 166,
    pivot_root: 155,
    chroot: 161,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    mount_setattr: 442,
    unshare: 272,
    setns: 308,
    kexec_load: 246,
    kexec_file_load: 320,
    init_module: 175,
    finit_module: 313,
    delete_module: 176,
    swapon: 167,
    swapoff: 168,
    reboot: 169,
    acct: 163,
    quotactl: 179,
    quotactl_fd: 443,
    open_by_handle_at: 304,
    name_to_handle_at: 303,
    lookup_dcookie: 212,
    iopl: 172,
    ioperm: 173,
    syslog: 103,
    vhangup: 153,
    settimeofday: 164,
    clock_settime: 227,
    adjtimex: 159,
    clock_adjtime: 305,
    fanotify_init: 300,
  },
  arm64: {
    ptrace: 117,
    process_vm_readv: 270,
    process_vm_writev: 271,
    kcmp: 272,
    pidfd_getfd: 438,
    keyctl: 219,
    add_key: 217,
    request_key: 218,
    bpf: 280,
    userfaultfd: 282,
    perf_event_open: 241,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    mount: 40,
    umount2: 39,
    pivot_root: 41,
    chroot: 51,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    mount_setattr: 442,
    unshare: 97,
    setns: 268,
    kexec_load: 104,
    kexec_file_load: 294,
    init_module: 105,
    finit_module: 273,
    delete_module: 106,
    swapon: 224,
    swapoff: 225,
    reboot: 142,
    acct: 89,
    quotactl: 60,
    quotactl_fd: 443,
    open_by_handle_at: 265,
    name_to_handle_at: 264,
    lookup_dcookie: 18,
    syslog: 116,
    vhangup: 58,
    settimeofday: 170,
    clock_settime: 112,
    adjtimex: 171,
    clock_adjtime: 266,
    fanotify_init: 262,
  },
};
const CLONE: Record<SeccompArch, number> = { x64: 56, arm64: 220 };
const CLONE3 = 435;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET. */
const CLONE_NEW_MASK = 0x7e020000;
/** x32 syscalls on x86_64 carry this bit in their number. */
const X32_SYSCALL_BIT = 0x40000000;

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

type Insn = { code: number; jt: number | string; jf: number | string; k: number; label?: string };

/** The compiled program for `arch` (little-endian struct sock_filter[]), for bwrap --seccomp. */
export function seccompProgram(arch: string = process.arch): Buffer {
  if (arch !== "x64" && arch !== "arm64") {
    throw new Error(`no seccomp filter for the ${arch} architecture (supported: x64, arm64): sandboxes cannot be hardened on this machine`);
  }
  const a = arch as SeccompArch;
  const ins: Insn[] = [
    { code: LD_W_ABS, jt: 0, jf: 0, k: 4 }, // seccomp_data.arch
    { code: JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH[a] },
    { code: RET_K, jt: 0, jf: 0, k: RET_KILL_PROCESS },
    { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
  ];
  if (a === "x64") ins.push({ code: JGE_K, jt: "kill", jf: 0, k: X32_SYSCALL_BIT });
  ins.push({ code: JEQ_K, jt: "enosys", jf: 0, k: CLONE3 });
  for (const nr of Object.values(DENIED_SYSCALLS[a])) ins.push({ code: JEQ_K, jt: "deny", jf: 0, k: nr });
  ins.push({ code: JEQ_K, jt: "clone", jf: 0, k: CLONE[a] });
  ins.push({ code: RET_K, jt: 0, jf: 0, k: RET_ALLOW });
  // Low 32 bits of args[0] (little-endian): the flags of clone().
  ins.push({ label: "clone", code: LD_W_ABS, jt: 0, jf: 0, k: 16 });
  ins.push({ code: JSET_K, jt: "deny", jf: 0, k: CLONE_NEW_MASK });
  ins.push({ code: RET_K, jt: 0, jf: 0, k: RET_ALLOW });
  ins.push({ label: "enosys", code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | ENOSYS });
  ins.push({ label: "deny", code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | EPERM });
  ins.push({ label: "kill", code: RET_K, jt: 0, jf: 0, k: RET_KILL_PROCESS });

  const at = new Map(ins.flatMap((x, i) => (x.label ? [[x.label, i] as const] : [])));
  const rel = (target: number | string, i: number): number => {
    if (typeof target === "number") return target;
    const off = at.get(target)! - (i + 1);
    // Conditional jumps are 8-bit forward offsets.
    if (off < 0 || off > 255) throw new Error(`seccomp jump to ${target} out of range`);
    return off;
  };
  const buf = Buffer.alloc(ins.length * 8);
  ins.forEach((x, i) => {
    buf.writeUInt16LE(x.code, i * 8);
    buf.writeUInt8(rel(x.jt, i), i * 8 + 2);
    buf.writeUInt8(rel(x.jf, i), i * 8 + 3);
    buf.writeUInt32LE(x.k >>> 0, i * 8 + 4);
  });
  return buf;
}
