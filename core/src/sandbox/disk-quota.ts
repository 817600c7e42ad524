// The size of a local sandbox's workspace (issue 14 item 4): workspaces share the host's file system
// with the embedded PostgreSQL, and a command wrote 2.4 GB in 2.6 s. Each workspace is its own
// ext4 file system in a sparse image file (<sandbox dir>/workspace.img), loop-mounted on
// <sandbox dir>/workspace: a write past the team's `workspaceMb` fails with ENOSPC inside the
// sandbox, at once, whatever wrote it (a command, the runtime, many processes).
//
// Why a loop image and not the alternatives (all tried on this project's machines, a root VM with
// loop devices): a project quota needs the host's file system mounted with prjquota (XFS, or ext4
// made with the quota feature), which Keel cannot do for an operator's disk; a measured budget
// (du + stop at the limit) overshoots by what a fast writer writes between two measurements
// (gigabytes per poll here). An image costs ~30 ms at creation (mkfs + mount) and a loop device
// per mounted workspace; it needs root (CAP_SYS_ADMIN for mount). Without it, workspaces have no
// size limit: the driver logs that once, and the free-space floor below still refuses new ones.
//
// Images are sparse: a workspace uses host disk for what it holds, so the sizes may add up past
// the disk (thin provisioning). The floor (minFreeDiskMb) refuses new sandboxes before the disk
// is full.
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { chmod, chown, mkdir, open, rename, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { ExecResult } from "./driver.js";
import { SandboxError, SandboxRequestError } from "./errors.js";

const run = promisify(execFile);

/** The host has less free space than the operator's floor: no new sandbox (507). */
export class SandboxStorageError extends SandboxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("insufficient_storage", 507, message, details);
  }
}

export function imagePath(sandboxDir: string): string {
  return path.join(sandboxDir, "workspace.img");
}

/** Whether workspace images can be made here: root and mkfs.ext4 (mount -o loop needs both). */
export async function canUseImages(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: "Keel is not running as root (mounting a workspace image needs CAP_SYS_ADMIN)" };
  try {
    await run("mkfs.ext4", ["-V"]);
  } catch (err) {
    return { ok: false, reason: `mkfs.ext4 is not usable (apt-get install -y e2fsprogs): ${(err as Error).message}` };
  }
  return { ok: true };
}

/**
 * Gives a new workspace its image: a spare one made earlier (renamed into place, instant) or a new
 * one. mkfs is the largest part of an image's cost (20-40 ms here under load), so after each
 * sandbox is ready the driver makes the next spare off the acquire path (`refill`).
 */
export class ImagePool {
  private making: Promise<void> | undefined;
  constructor(private readonly dir: string) {}

  async take(sandboxDir: string, sizeMb: number): Promise<void> {
    try {
      await rename(this.spare(sizeMb), imagePath(sandboxDir));
    } catch {
      await makeImage(imagePath(sandboxDir), sizeMb);
    }
  }

  /** Makes one spare of this size if there is none; at most one at a time per process. */
  refill(sizeMb: number, onError: (err: Error) => void): void {
    if (this.making) return;
    const spare = this.spare(sizeMb);
    const tmp = `${spare}.${process.pid}.tmp`;
    this.making = mkdir(this.dir, { recursive: true, mode: 0o700 })
      .then(() =>
        stat(spare).then(
          () => undefined,
          () => makeImage(tmp, sizeMb).then(() => rename(tmp, spare)),
        ),
      )
      .catch((err: Error) => onError(err))
      .finally(() => (this.making = undefined));
  }

  private spare(sizeMb: number): string {
    return path.join(this.dir, `spare-${sizeMb}.img`);
  }
}

/** A sparse ext4 image of `sizeMb` at `img`. */
async function makeImage(img: string, sizeMb: number): Promise<void> {
  const fh = await open(img, "wx", 0o600);
  try {
    await fh.truncate(sizeMb * 1024 * 1024);
  } finally {
    await fh.close();
  }
  // -m 0: no blocks reserved for root (the sandbox never runs as root); lazy init + nodiscard:
  // mkfs otherwise zeroes the journal, 65 MB of host disk per 2 GB workspace and ~2× the time
  // (measured here).
  await run("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", img]);
}

/**
 * Mounts the image on <sandbox dir>/workspace unless it already is (a reattach, or after a
 * reboot); its root belongs to the sandbox's uid (`owner`), the rest of the host's disk is not its.
 */
export async function mountImage(sandboxDir: string, owner: { uid: number; gid: number }): Promise<void> {
  const ws = path.join(sandboxDir, "workspace");
  if (isMountPoint(ws)) return;
  await run("mount", ["-o", "loop,nodev,nosuid", imagePath(sandboxDir), ws]);
  await rmdir(path.join(ws, "lost+found")).catch(() => {});
  await chown(ws, owner.uid, owner.gid);
  await chmod(ws, 0o700);
}

/** Unmounts the workspace (suspend, release): it frees the loop device; the image keeps the files. */
export async function unmountImage(sandboxDir: string): Promise<void> {
  const ws = path.join(sandboxDir, "workspace");
  if (!isMountPoint(ws)) return;
  // Lazy: a process still dying in the sandbox's namespace must not keep the image mounted.
  await run("umount", ["-l", ws]);
}

function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  // Field 5 of mountinfo is the mount point, with spaces and such escaped as octal.
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === target);
}

/** Free space for unprivileged writers on the file system holding `dir`, MB. */
export function freeDiskMb(dir: string): number {
  const s = statfsSync(existsSync(dir) ? dir : path.dirname(dir));
  return Math.floor((s.bavail * s.bsize) / (1024 * 1024));
}

/** Refuses a new sandbox when the host's free space is below the operator's floor. */
export function checkFreeSpace(dir: string, minFreeMb: number): void {
  if (minFreeMb <= 0) return;
  const free = freeDiskMb(dir);
  if (free < minFreeMb) {
    throw new SandboxStorageError(
      `no new sandbox: the disk holding the sandboxes has ${free} MB free, below the operator's floor of ${minFreeMb} MB (KEEL_SANDBOX_MIN_FREE_MB); free space or raise the floor`,
      { freeMb: free, minFreeMb },
    );
  }
}

/**
 * The runtime's own write failed on a full workspace (its exec records live there today): say what
 * is full and what to do, not "ENOSPC" from inside the runtime.
 */
export function workspaceFullError(err: unknown): unknown {
  if (!(err instanceof SandboxRequestError) || !/ENOSPC|no space left on device/i.test(err.message)) return err;
  return new SandboxRequestError(
    "workspace_full",
    507,
    "the workspace is full (it hit the sandbox's workspace size limit), so the command's result could not be recorded; delete files to make room",
    {},
    { cause: err },
  );
}

/** A command that failed on a full workspace says so (the kernel's ENOSPC text is all it saw). */
export function markDiskFull(r: ExecResult): ExecResult {
  return !r.limit && r.exitCode !== 0 && /No space left on device|Disk quota exceeded/.test(r.stderr) ? { ...r, limit: "disk" } : r;
}
