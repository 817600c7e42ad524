// The host's disk against a sandbox (issue 14 item 4), through real bubblewrap, real loop-mounted
// ext4 workspace images (this test runs as root, as Keel does on a server), the real egress proxy.
// A workspace stops at its policy size with ENOSPC inside; the host's free-space floor refuses new
// sandboxes; the egress proxy's log does not grow without end.
import { statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freeDiskMb, SandboxStorageError } from "../../src/sandbox/disk-quota.js";
import { templateObject } from "../../src/sandbox/k8s/objects.js";
import { describeExec } from "../../src/sandbox/tools.js";
import { policy, useSandboxEnv } from "./helpers.js";

const env = useSandboxEnv();
const TEAM = "team-disk";
let n = 0;
const session = () => `disk-${process.pid}-${++n}`;

describe("sandbox disk (local driver)", () => {
  it("runs as root here, so workspaces get images (else this file proves nothing)", () => {
    expect(process.getuid?.()).toBe(0);
  });

  it("stops a workspace at its size with a clear error; the host disk holds only what the workspace holds", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), TEAM, policy({ resources: { workspaceMb: 64 } }));
    const r = await d.exec(h, { command: "head -c 200M /dev/zero > big.bin", timeoutMs: 60_000 });
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.limit).toBe("disk");
    expect(describeExec(r, 60_000).error).toMatch(/^the command ran out of disk space: the workspace is full/);
    // What landed on the host's disk is the image's allocated blocks: at most the workspace size.
    const img = statSync(path.join(env.baseDir, TEAM, h.sessionId, "workspace.img"));
    expect(img.blocks * 512).toBeLessThanOrEqual(64 * 1024 * 1024);
    // Making room works, and the files survive a suspend (unmounted) and the next acquire (mounted again).
    expect((await d.exec(h, { command: "rm big.bin && echo kept > note.txt && df -m /workspace | tail -1" })).stdout).toMatch(/^\/dev\/loop\d+\s+\d+/);
    await d.suspend(h);
    const again = await d.acquire(h.sessionId, TEAM, policy({ resources: { workspaceMb: 64 } }));
    expect((await d.readFile(again, "note.txt")).content).toBe("kept\n");
  });

  it("refuses a new sandbox below the free-space floor with a clear error, and still reattaches an existing one", async () => {
    const p = policy();
    const existing = await env.driver().acquire(session(), TEAM, p);
    const floor = freeDiskMb(env.baseDir) + 1_000_000;
    const d = env.driver({ minFreeDiskMb: floor });
    const refused = await d.acquire(session(), TEAM, p).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SandboxStorageError);
    expect(refused).toMatchObject({ status: 507, code: "insufficient_storage" });
    expect((refused as Error).message).toMatch(new RegExp(`below the operator's floor of ${floor} MB \\(KEEL_SANDBOX_MIN_FREE_MB\\)`));
    expect((await d.acquire(existing.sessionId, TEAM, p)).sandboxId).toBe(existing.sandboxId);
  });

  it("caps the egress proxy's log while a sandbox makes it log in a loop", async () => {
    const d = env.driver({ maxLogBytes: 8192, egressHosts: { "api.test": "127.0.0.1" } });
    const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["api.test"] } }));
    // 300 refused requests from one curl (URL globbing): one log line each, ~200 bytes.
    await d.exec(h, { command: "curl -s -o /dev/null --max-time 60 'http://other.test:1/[1-300]'", timeoutMs: 90_000 });
    const log = path.join(env.baseDir, TEAM, h.sessionId, "egress.log");
    expect((await stat(log)).size).toBeLessThanOrEqual(8192 + 512);
    const text = await readFile(log, "utf8");
    expect(text).toContain('"msg":"log truncated"');
    expect(text).toContain('"msg":"egress refused","host":"other.test"');
  });

  it("gives the Kubernetes driver's workspace the same size (the PVC's storage request)", () => {
    const t = templateObject(
      "ns",
      "tpl",
      "team",
      policy({ resources: { workspaceMb: 300 } }),
      { image: "keel", runtimePort: 8080, cpu: "1", workers: { namespace: "keel", podLabels: {} } },
      "hash",
    );
    const json = JSON.stringify(t);
    expect(json).toContain('"resources":{"requests":{"storage":"300Mi"}}');
    expect(json).not.toContain('{"name":"workspace","emptyDir"');
  });
});
