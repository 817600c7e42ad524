// Workspace file operations, confined to the workspace: a path is resolved against it, must stay
// inside it lexically (no `..` escape, no absolute path elsewhere) and physically (the real path
// of the target, or of its nearest existing ancestor for a new file, after following symlinks),
// and may not touch the runtime's hidden state dir.
//
// Reads open with O_NONBLOCK|O_NOFOLLOW and judge the opened file (fstat), not the path: a FIFO
// swapped in between a stat and a blocking open would hold a libuv thread until someone writes to
// it, and four such reads hang every later file call of the runtime (issue 14 item 7).
import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, realpath, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";

export class FileError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Test seams for races: `beforeOpen` runs between the path checks and the open. */
export type WorkspaceHooks = { beforeOpen?: (file: string) => Promise<void> | void };

const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

export class Workspace {
  private real: string | undefined;
  constructor(
    readonly root: string,
    readonly stateDirName = ".keel",
    private readonly hooks: WorkspaceHooks = {},
  ) {}

  private async realRoot(): Promise<string> {
    this.real ??= await realpath(this.root);
    return this.real;
  }

  /** The absolute host path for a workspace path, or a 400 FileError saying why not. */
  async resolve(p: string, opts: { mustExist: boolean }): Promise<string> {
    if (typeof p !== "string" || p.length === 0 || p.includes("\0")) throw new FileError(400, "invalid_path", "path must be a non-empty string");
    const abs = path.resolve(this.root, p);
    const rel = path.relative(this.root, abs);
    if (rel.startsWith("..") || path.isAbsolute(rel)) {
      throw new FileError(400, "path_outside_workspace", `path "${p}" is outside the workspace (${this.root}); use a path relative to it`);
    }
    if (rel.split(path.sep)[0] === this.stateDirName) {
      throw new FileError(400, "path_reserved", `path "${p}" is in the runtime's state directory, which is not accessible`);
    }
    const root = await this.realRoot();
    // Walk up to the nearest existing ancestor and check where it really is (symlinks followed).
    let probe = abs;
    for (;;) {
      try {
        const real = await realpath(probe);
        const realRel = path.relative(root, real);
        if (realRel.startsWith("..") || path.isAbsolute(realRel)) {
          throw new FileError(400, "symlink_escape", `path "${p}" leads outside the workspace through a symbolic link`);
        }
        if (realRel.split(path.sep)[0] === this.stateDirName) {
          throw new FileError(400, "path_reserved", `path "${p}" leads into the runtime's state directory, which is not accessible`);
        }
        if (probe !== abs && opts.mustExist) throw new FileError(404, "not_found", `"${p}" does not exist`);
        return probe === abs ? real : path.join(real, path.relative(probe, abs));
      } catch (err) {
        if (err instanceof FileError) throw err;
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        if (opts.mustExist && probe === abs) throw new FileError(404, "not_found", `"${p}" does not exist`);
        probe = path.dirname(probe);
      }
    }
  }

  async read(p: string, maxBytes: number): Promise<{ path: string; content: string; encoding: "utf8" | "base64"; sizeBytes: number; truncated: boolean }> {
    const file = await this.resolve(p, { mustExist: true });
    const st = await stat(file);
    if (st.isDirectory()) throw new FileError(400, "is_directory", `"${p}" is a directory; use list_files`);
    if (!st.isFile()) throw new FileError(400, "not_a_file", `"${p}" is not a regular file`);
    await this.hooks.beforeOpen?.(file);
    // Only the first maxBytes are read: a multi-GB log costs no more than its head.
    const fh = await open(file, READ_FLAGS).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ELOOP") throw new FileError(400, "symlink_escape", `"${p}" was replaced by a symbolic link while being opened`);
      if (err.code === "ENOENT") throw new FileError(404, "not_found", `"${p}" does not exist`);
      throw err;
    });
    let slice: Buffer;
    let sizeBytes: number;
    try {
      const opened = await fh.stat();
      if (!opened.isFile()) throw new FileError(400, "not_a_file", `"${p}" is not a regular file`);
      sizeBytes = opened.size;
      const buf = Buffer.alloc(Math.min(maxBytes, sizeBytes));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      slice = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
    const truncated = sizeBytes > slice.length;
    // A cut may split a multi-byte character: judge (and send) the text without that tail.
    const text = (truncated ? slice.subarray(0, completeUtf8Length(slice)) : slice).toString("utf8");
    // Round-trips as UTF-8 (U+FFFD only appears for invalid bytes): send text, else base64.
    const isText = !text.includes("\uFFFD") && !slice.includes(0);
    return { path: p, content: isText ? text : slice.toString("base64"), encoding: isText ? "utf8" : "base64", sizeBytes, truncated };
  }

  async write(p: string, content: string, encoding: "utf8" | "base64"): Promise<{ path: string; sizeBytes: number }> {
    const file = await this.resolve(p, { mustExist: false });
    await mkdir(path.dirname(file), { recursive: true });
    // Re-check after mkdir: the parent may have been swapped for a symlink in between.
    await this.resolve(p, { mustExist: false });
    const existing = await lstat(file).catch(() => undefined);
    if (existing?.isDirectory()) throw new FileError(400, "is_directory", `"${p}" is a directory`);
    const data = Buffer.from(content, encoding);
    // Temp file + rename: replaces a symlink at the target instead of writing through it.
    const tmp = path.join(path.dirname(file), `.keel-write-${process.pid}-${Date.now()}`);
    await writeFile(tmp, data, { flag: "wx" });
    await rename(tmp, file);
    return { path: p, sizeBytes: data.length };
  }

  async list(
    p: string,
    opts: { recursive: boolean; maxEntries: number },
  ): Promise<{ entries: { path: string; type: "file" | "directory" | "symlink" | "other"; sizeBytes: number }[]; truncated: boolean }> {
    const dir = await this.resolve(p, { mustExist: true });
    const root = await this.realRoot();
    const entries: { path: string; type: "file" | "directory" | "symlink" | "other"; sizeBytes: number }[] = [];
    const queue = [dir];
    let truncated = false;
    while (queue.length > 0) {
      const d = queue.shift()!;
      const listed = await readdir(d, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) =>
        d !== dir && err.code === "ENOENT" ? [] : Promise.reject(err),
      );
      for (const e of listed) {
        const full = path.join(d, e.name);
        const rel = path.relative(root, full);
        if (rel.split(path.sep)[0] === this.stateDirName) continue;
        if (entries.length >= opts.maxEntries) {
          truncated = true;
          break;
        }
        const type = e.isFile() ? "file" : e.isDirectory() ? "directory" : e.isSymbolicLink() ? "symlink" : "other";
        // A command may delete or rename a file while we list: skip it, as `ls` would.
        const sizeBytes =
          type === "file"
            ? await lstat(full).then(
                (s) => s.size,
                (err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? -1 : Promise.reject(err)),
              )
            : 0;
        if (sizeBytes < 0) continue;
        entries.push({ path: rel, type, sizeBytes });
        if (type === "directory" && opts.recursive) queue.push(full);
      }
      if (truncated) break;
    }
    return { entries, truncated };
  }
}

/** Length of `buf` without a trailing, incomplete UTF-8 sequence (at most 3 bytes dropped). */
function completeUtf8Length(buf: Buffer): number {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const b = buf[buf.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? buf.length - back : buf.length;
  }
  return buf.length;
}
