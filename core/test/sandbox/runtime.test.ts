// The sandbox runtime's HTTP API on its own (no bubblewrap): token, path confinement,
// idempotency records and fencing that survive a restart of the server.
import type http from "node:http";
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRuntimeServer } from "@keel/sandbox";
import { RuntimeClient } from "../../src/sandbox/runtime-client.js";

const TOKEN = "test-token-0123456789abcdef";
let dir: string;
let workspace: string;
let socketPath: string;
let server: http.Server;

async function start(): Promise<void> {
  server = createRuntimeServer({ token: TOKEN, workspace, env: { PATH: "/usr/bin:/bin" }, limits: {} });
  await rm(socketPath, { force: true });
  await new Promise<void>((r) => server.listen(socketPath, r));
}
const stop = () => new Promise<void>((r) => server.close(() => r()));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "keel-rt-"));
  workspace = path.join(dir, "workspace");
  await mkdir(workspace);
  socketPath = path.join(dir, "rt.sock");
  await start();
});
afterAll(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});

const client = (token = TOKEN) => new RuntimeClient({ socketPath }, token);

describe("sandbox runtime", () => {
  it("refuses a request without the right token", async () => {
    await expect(client("wrong-token-0123456789").health()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
    await expect(client("").exec({ command: "true" })).rejects.toMatchObject({ status: 401 });
    expect((await client().health()).ok).toBe(true);
  });

  it("a start token only hands the runtime over, once; the working token it sets opens everything and can rotate itself", async () => {
    const start = "start-token-0123456789abcdef";
    const sock = path.join(dir, "handover.sock");
    const fresh = createRuntimeServer({ startToken: start, workspace, env: { PATH: "/usr/bin:/bin" }, limits: {} });
    await new Promise<void>((r) => fresh.listen(sock, r));
    const as = (token: string) => new RuntimeClient({ socketPath: sock }, token);
    try {
      // Before the hand-over: the start token runs nothing, reads nothing, shows no health.
      await expect(as(start).exec({ command: "true" })).rejects.toMatchObject({ status: 403, code: "start_token" });
      await expect(as(start).readFile("x")).rejects.toMatchObject({ status: 403 });
      await expect(as(start).health()).rejects.toMatchObject({ status: 403 });
      await expect(as("wrong-token-0123456789").setToken("s".repeat(43))).rejects.toMatchObject({ status: 401 });
      await expect(as(start).setToken("short")).rejects.toMatchObject({ status: 422, code: "validation_failed" });
      const session = "session-token-".padEnd(43, "a");
      await as(start).setToken(session);
      expect((await as(session).exec({ command: "echo in" })).stdout).toBe("in\n");
      // Spent: a second hand-over with it (another tenant's attempt, a replay) is refused.
      await expect(as(start).setToken("t".repeat(43))).rejects.toMatchObject({ status: 401 });
      // The working token rotates itself; the old one then opens nothing.
      const next = "next-token-".padEnd(43, "b");
      await as(session).setToken(next);
      await expect(as(session).health()).rejects.toMatchObject({ status: 401 });
      expect((await as(next).health()).ok).toBe(true);
    } finally {
      await new Promise((r) => fresh.close(r));
    }
  });

  it("runs a command and reports exit code, output and truncation", async () => {
    const r = await client().exec({ command: "echo out; echo err >&2; exit 3" });
    expect(r).toMatchObject({ exitCode: 3, stdout: "out\n", stderr: "err\n", truncated: false, timedOut: false });
    const big = await client().exec({ command: ["head", "-c", "5000", "/dev/zero"], maxOutputBytes: 100 });
    expect(big).toMatchObject({ truncated: true });
    expect(big.stdout.length).toBe(100);
    const streamed: string[] = [];
    const s = await client().exec({ command: "echo a; echo b", onOutput: (_, d) => streamed.push(d) });
    expect(streamed.join("")).toBe("a\nb\n");
    expect(s.stdout).toBe("a\nb\n");
  });

  it("reads the head of a large file; a multi-byte character cut at the limit keeps it text", async () => {
    await writeFile(path.join(workspace, "utf8.txt"), "ab€€€"); // € is 3 bytes: a 4-byte cut splits the first
    expect(await client().readFile("utf8.txt", { maxBytes: 4 })).toEqual({ path: "utf8.txt", content: "ab", encoding: "utf8", sizeBytes: 11, truncated: true });
    expect(await client().readFile("utf8.txt", { maxBytes: 5 })).toMatchObject({ content: "ab€", encoding: "utf8", truncated: true });
    expect(await client().readFile("utf8.txt")).toMatchObject({ content: "ab€€€", truncated: false });
    await writeFile(path.join(workspace, "bin.dat"), Buffer.from([0x61, 0, 0xff]));
    expect(await client().readFile("bin.dat")).toEqual({
      path: "bin.dat",
      content: Buffer.from([0x61, 0, 0xff]).toString("base64"),
      encoding: "base64",
      sizeBytes: 3,
      truncated: false,
    });
    for (const f of ["utf8.txt", "bin.dat"]) await rm(path.join(workspace, f)); // the next test lists the workspace
  });

  it("confines file calls to the workspace", async () => {
    await writeFile(path.join(dir, "secret.txt"), "host secret");
    await symlink(dir, path.join(workspace, "escape"));
    const c = client();
    await expect(c.readFile("../secret.txt")).rejects.toMatchObject({ status: 400, code: "path_outside_workspace" });
    await expect(c.readFile(path.join(dir, "secret.txt"))).rejects.toMatchObject({ status: 400, code: "path_outside_workspace" });
    await expect(c.readFile("a/../../secret.txt")).rejects.toMatchObject({ status: 400 });
    await expect(c.readFile("escape/secret.txt")).rejects.toMatchObject({ status: 400, code: "symlink_escape" });
    await expect(c.writeFile("escape/new.txt", "x")).rejects.toMatchObject({ status: 400, code: "symlink_escape" });
    await expect(c.readFile(".keel/fences.json")).rejects.toMatchObject({ status: 400, code: "path_reserved" });
    await expect(c.readFile("missing.txt")).rejects.toMatchObject({ status: 404 });
    await expect(c.readFile("../secret.txt")).rejects.toThrow(/outside the workspace/);
    // Absolute paths inside the workspace are fine.
    await c.writeFile(path.join(workspace, "dir/inside.txt"), "ok");
    expect((await c.readFile("dir/inside.txt")).content).toBe("ok");
    const list = await c.listFiles(".", { recursive: true });
    expect(list.entries.map((e) => e.path).sort()).toEqual(["dir", "dir/inside.txt", "escape"]);
  });

  it("returns the recorded result for a repeated idempotency key, also after a restart", async () => {
    const c = client();
    const cmd = "echo run >> count.txt; wc -l < count.txt";
    const first = await c.exec({ command: cmd, idempotencyKey: "call-1" });
    expect(first.stdout.trim()).toBe("1");
    const again = await c.exec({ command: cmd, idempotencyKey: "call-1" });
    expect(again).toMatchObject({ stdout: first.stdout, replayed: true });
    // Concurrent duplicates while the first is still running: one run.
    const [a, b] = await Promise.all([
      c.exec({ command: "sleep 0.2; " + cmd, idempotencyKey: "call-2" }),
      c.exec({ command: "sleep 0.2; " + cmd, idempotencyKey: "call-2" }),
    ]);
    expect(a.stdout).toBe(b.stdout);
    await stop();
    await start();
    const afterRestart = await client().exec({ command: cmd, idempotencyKey: "call-1" });
    expect(afterRestart).toMatchObject({ stdout: "1\n", replayed: true });
    expect((await readFile(path.join(workspace, "count.txt"), "utf8")).split("\n").filter(Boolean)).toHaveLength(2);
  });

  it("refuses an epoch lower than the highest seen for the run, also after a restart", async () => {
    const c = client();
    await c.exec({ command: "true", epoch: 3, fenceKey: "run-a" });
    await expect(c.exec({ command: "touch stale", epoch: 2, fenceKey: "run-a" })).rejects.toMatchObject({ status: 409, code: "stale_epoch" });
    await expect(c.writeFile("stale.txt", "x", { epoch: 2, fenceKey: "run-a" })).rejects.toMatchObject({ status: 409 });
    // Epochs count per run: another run starts low.
    await c.exec({ command: "true", epoch: 1, fenceKey: "run-b" });
    await stop();
    await start();
    await expect(client().exec({ command: "touch stale", epoch: 2, fenceKey: "run-a" })).rejects.toThrow(/older than 3/);
    await client().exec({ command: "true", epoch: 4, fenceKey: "run-a" });
    await expect(readFile(path.join(workspace, "stale"))).rejects.toThrow();
  });
});
