// Workspace reads against a FIFO swapped in between the path checks and the open (issue 14 item 7):
// a blocking open of a FIFO holds a libuv thread until a writer comes, and four of them hang every
// later file call. The race is replayed exactly through the `beforeOpen` seam; real files, real FIFOs.
import { spawnSync } from "node:child_process";
import { constants, openSync, closeSync } from "node:fs";
import { mkdtemp, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Workspace } from "../src/files.js";

let root: string;
const fifos: string[] = [];

function mkfifo(file: string): void {
  const r = spawnSync("mkfifo", [file]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
  fifos.push(file);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "keel-files-"));
});
// A read the old code left blocked in open() is released by a writer, so a failing run ends.
afterEach(() => {
  for (const f of fifos.splice(0)) {
    try {
      closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      /* no reader waiting, or gone */
    }
  }
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("Workspace.read against a FIFO", () => {
  it("refuses a FIFO swapped in after the checks, without blocking, and keeps answering", async () => {
    const swaps: string[] = [];
    const ws = new Workspace(root, ".keel", {
      beforeOpen: async (file) => {
        await unlink(file);
        mkfifo(file);
        swaps.push(file);
      },
    });
    // Five at once: more than libuv's four threads, so one blocked open per read would hang all.
    const names = [1, 2, 3, 4, 5].map((i) => `swapped-${i}.txt`);
    for (const n of names) await writeFile(path.join(root, n), "plain text\n");
    const results = await Promise.allSettled(names.map((n) => ws.read(n, 1024)));
    expect(swaps).toHaveLength(5);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect(r.status === "rejected" && r.reason).toMatchObject({ status: 400, code: "not_a_file" });
    }
    // Other file calls still answer.
    await writeFile(path.join(root, "ok.txt"), "still here\n");
    expect((await new Workspace(root).read("ok.txt", 1024)).content).toBe("still here\n");
    expect((await ws.list(".", { recursive: false, maxEntries: 100 })).entries.length).toBeGreaterThan(5);
  });

  it("refuses a symbolic link swapped in after the checks instead of following it", async () => {
    await writeFile(path.join(root, "outside.txt"), "not for you\n");
    const ws = new Workspace(path.join(root, "ws"), ".keel", {
      beforeOpen: async (file) => {
        await unlink(file);
        await symlink(path.join(root, "outside.txt"), file);
      },
    });
    spawnSync("mkdir", ["-p", path.join(root, "ws")]);
    await writeFile(path.join(root, "ws", "link.txt"), "inside\n");
    await expect(ws.read("link.txt", 1024)).rejects.toMatchObject({ status: 400, code: "symlink_escape" });
  });

  it("refuses a FIFO that is there from the start", async () => {
    mkfifo(path.join(root, "plain-fifo"));
    await expect(new Workspace(root).read("plain-fifo", 1024)).rejects.toMatchObject({ status: 400, code: "not_a_file" });
  });
});
