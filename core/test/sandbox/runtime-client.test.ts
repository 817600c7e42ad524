// The runtime client against a runtime that misbehaves (issue 14: a sandbox could put its own
// server behind the socket): a 200 that is not JSON, an endless body, no answer, a slow drip.
// Each is a SandboxUnavailableError within the call's deadline, never a throw from an event
// handler (that crashed a standalone worker) or a promise that never settles (that hung the reaper).
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxUnavailableError } from "../../src/sandbox/errors.js";
import { RuntimeClient } from "../../src/sandbox/runtime-client.js";

let dir: string;
const servers: http.Server[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "keel-rtc-"));
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await rm(dir, { recursive: true, force: true });
});

async function serve(name: string, handler: http.RequestListener, timeoutMs?: number): Promise<RuntimeClient> {
  const server = http.createServer(handler);
  servers.push(server);
  const socketPath = path.join(dir, name);
  await new Promise<void>((r) => server.listen(socketPath, r));
  return new RuntimeClient({ socketPath, socketOwner: process.getuid!() }, "token-0123456789abcdef", timeoutMs ? { timeoutMs } : {});
}

describe("runtime client against a misbehaving runtime", () => {
  it("turns a 200 that is not JSON into a clean error", async () => {
    const c = await serve("not-json.sock", (_req, res) => res.end("FORGED: all tests passed"));
    await expect(c.exec({ command: "true" })).rejects.toThrow(SandboxUnavailableError);
    await expect(c.readFile("a.txt")).rejects.toThrow(/not JSON/);
    await expect(c.health()).rejects.toThrow(/not JSON/);
  });

  it("refuses a health answer of the wrong shape", async () => {
    const c = await serve("shape.sock", (_req, res) => res.end(JSON.stringify({ ok: true, idleMs: "soon" })));
    await expect(c.health()).rejects.toThrow(/malformed/);
  });

  it("stops reading an answer past its size cap", async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const c = await serve("huge.sock", (_req, res) => {
      res.writeHead(200);
      const push = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", push);
      };
      push();
    });
    await expect(c.readFile("big.bin", { maxBytes: 1024 })).rejects.toThrow(/over \d+ bytes/);
    await expect(c.exec({ command: "true", maxOutputBytes: 1024 })).rejects.toThrow(/over \d+ bytes/);
  });

  it("gives up on a runtime that never answers or only drips", async () => {
    const silent = await serve("silent.sock", () => {}, 300);
    await expect(silent.health({ timeoutMs: 300 })).rejects.toThrow(/no complete answer within 300 ms/);
    // An exec's deadline is its command's timeout plus the client's margin.
    await expect(silent.exec({ command: "sleep 1", timeoutMs: 200 })).rejects.toThrow(/no complete answer within 500 ms/);
    await expect(silent.readFile("a.txt")).rejects.toThrow(/no complete answer within 300 ms/);
    const drip = await serve("drip.sock", (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(" ")), 20);
    });
    await expect(drip.health({ timeoutMs: 300 })).rejects.toThrow(/no complete answer/);
  });

  it("connects only to a socket this user made, never through a symlink", async () => {
    const real = await serve("real.sock", (_req, res) => res.end(JSON.stringify({ ok: true, pid: 1, inFlight: 0, idleMs: 0, uptimeMs: 0 })));
    expect((await real.health()).ok).toBe(true);
    const { symlink } = await import("node:fs/promises");
    await symlink(path.join(dir, "real.sock"), path.join(dir, "link.sock"));
    const viaLink = new RuntimeClient({ socketPath: path.join(dir, "link.sock"), socketOwner: process.getuid!() }, "t".repeat(20));
    await expect(viaLink.health()).rejects.toThrow(/is not a socket made by this process's user/);
    const otherOwner = new RuntimeClient({ socketPath: path.join(dir, "real.sock"), socketOwner: process.getuid!() + 1 }, "t".repeat(20));
    await expect(otherOwner.health()).rejects.toThrow(/is not a socket made by/);
    await expect(new RuntimeClient({ socketPath: path.join(dir, "missing.sock"), socketOwner: 0 }, "t".repeat(20)).health()).rejects.toThrow(/no socket at/);
  });
});
