// Host uids for local sandboxes when Keel runs as root: each sandbox (and its egress proxy) gets
// its own uid from a range, so a process running as one sandbox's uid can neither read another
// sandbox's workspace nor ptrace its runtime (issue 14). A uid is claimed by creating
// <baseDir>/.uids/<uid> exclusively (O_EXCL: two workers never hand out the same uid without a
// shared lock) and freed when the sandbox is released. A claim whose sandbox directory no longer
// records that uid (a crash between release and unlink) is taken over.
import { createHash } from "node:crypto";
import { lchown, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";

export type UidRange = { first: number; count: number };

/** Far above login users (1000+), subordinate-id ranges (100000+) and systemd's container range (524288+). */
export const DEFAULT_UID_RANGE: UidRange = { first: 2_000_000_000, count: 100_000 };

export async function claimUid(
  baseDir: string,
  range: UidRange,
  teamId: string,
  sessionId: string,
  ownerUid: (teamId: string, sessionId: string) => Promise<number | undefined>,
): Promise<number> {
  const dir = path.join(baseDir, ".uids");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Start where this session hashes to: claims rarely collide, so few probes.
  const start = createHash("sha256").update(`${teamId}/${sessionId}`).digest().readUInt32BE(0) % range.count;
  for (let i = 0; i < range.count; i++) {
    const uid = range.first + ((start + i) % range.count);
    const file = path.join(dir, String(uid));
    try {
      const fh = await open(file, "wx", 0o600);
      await fh.writeFile(`${teamId}/${sessionId}`);
      await fh.close();
      return uid;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const [t, s] = (await readFile(file, "utf8").catch(() => "")).split("/");
      if (t === teamId && s === sessionId) return uid;
      if (t && s && (await ownerUid(t, s)) !== uid) {
        if (
          await unlink(file).then(
            () => true,
            () => false,
          )
        )
          i--; // retry the same uid
      }
    }
  }
  throw new Error(`no free sandbox uid in ${range.first}..${range.first + range.count - 1}: release sandboxes or widen the range`);
}

export async function releaseUid(baseDir: string, uid: number | undefined): Promise<void> {
  if (uid !== undefined) await unlink(path.join(baseDir, ".uids", String(uid))).catch(() => {});
}

/** Hands a tree to a sandbox's uid (a workspace made before per-sandbox uids). Symlinks are not followed. */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    await lchown(p, uid, gid).catch(() => {});
    if (e.isDirectory()) await chownTree(p, uid, gid);
  }
}
