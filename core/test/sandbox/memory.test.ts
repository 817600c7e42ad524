// The sandbox's memory as a whole (issue 14 item 3), through real bubblewrap and the host's real
// memory cgroup: RLIMIT_AS bounds one process, so three 400 MB processes under memoryMb 512 all
// ran before; now the sandbox's group stops the total, the command hit is named, and the group
// goes with the sandbox. This host allows cgroups (probe below); where it does not, the test fails
// loudly rather than pass on rlimits it does not test.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryCgroups } from "../../src/sandbox/cgroup.js";
import { describeExec } from "../../src/sandbox/tools.js";
import { policy, useSandboxEnv } from "./helpers.js";

const env = useSandboxEnv();
const TEAM = "team-memory";
let n = 0;
const session = () => `mem-${process.pid}-${++n}`;

// Allocates and touches `mb` MB, marks itself, waits (bounded) for `want` markers, says it held.
const hog = (mb: number, tag: string, want: number) =>
  `python3 -c "
import os, time
b = b'x' * (${mb} << 20)
open('held-${tag}', 'w').close()
t = time.time()
while len([f for f in os.listdir('.') if f.startswith('held-')]) < ${want} and time.time() - t < 10: time.sleep(0.05)
print('held', len(b) >> 20)
"`;

describe("sandbox memory cgroup (local driver)", () => {
  it("this host lets Keel make memory cgroups (else the rest proves nothing)", () => {
    const p = new MemoryCgroups().probe();
    expect(p, JSON.stringify(p)).toMatchObject({ ok: true });
  });

  it("answers an exec that prints nothing for 6 s (Node 20's global agent dropped it at 5 s)", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), TEAM, policy());
    expect((await d.exec(h, { command: "sleep 6; echo done", timeoutMs: 30_000 })).stdout).toBe("done\n");
  });

  it("bounds the sandbox's total: three 400 MB processes under memoryMb 512 do not all run", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), TEAM, policy({ resources: { memoryMb: 512 } }));
    const r = await d.exec(h, { command: `for i in 1 2 3; do ${hog(400, "$i", 3)} & done; wait`, timeoutMs: 60_000 });
    const held = r.stdout.split("\n").filter((l) => l.startsWith("held"));
    expect(held.length).toBeLessThan(2);
    const group = (await env.record(TEAM, h.sessionId)) as unknown as { cgroup?: string };
    expect(readFileSync(path.join(group.cgroup!, "memory.limit_in_bytes"), "utf8").trim()).toBe(String(512 * 1024 * 1024));
    // The sandbox lives on, and its group is gone with it.
    expect((await d.exec(h, { command: "echo alive" })).stdout).toBe("alive\n");
    await d.release(h);
    expect(existsSync(group.cgroup!)).toBe(false);
  });

  it("stops a command that takes the sandbox past its memory with a clear error, tmpfs pages counted", async () => {
    const d = env.driver();
    const h = await d.acquire(session(), TEAM, policy({ resources: { memoryMb: 512 } }));
    // 120 MB of tmpfs (/tmp is a quarter of memoryMb) is memory too: the earlier per-process limit never saw it.
    expect((await d.exec(h, { command: "head -c 120M /dev/zero > /tmp/fill && echo filled" })).stdout).toBe("filled\n");
    const r = await d.exec(h, { command: hog(400, "x", 1), timeoutMs: 60_000 });
    expect(r.stdout).not.toContain("held");
    expect(r.limit).toBe("memory");
    expect(describeExec(r, 60_000).error).toBe("the command ran out of memory: it hit the sandbox's memory limit");
    expect((await d.exec(h, { command: "rm /tmp/fill; echo alive" })).stdout).toBe("alive\n");
  });
});
