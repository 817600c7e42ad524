// FIFOs in a workspace against the file view (issue 14 item 7), through real bubblewrap: a daemon
// inside swaps a file for a FIFO and back as fast as it can while the host reads it. Each read
// answers (content, 400 not_a_file or 404), none hangs the runtime's file threads, and the other
// file calls keep answering. The exact race (a FIFO between the checks and the open) is replayed
// deterministically in sandbox/test/files.test.ts.
import { describe, expect, it } from "vitest";
import { SandboxRequestError } from "../../src/sandbox/errors.js";
import { policy, useSandboxEnv } from "./helpers.js";

const env = useSandboxEnv();
const TEAM = "team-fifo";

describe("file view against FIFOs (local driver)", () => {
  it("refuses a FIFO, and a file swapped with a FIFO in a loop never hangs the file calls", async () => {
    // A short host-side bound: on the old runtime a blocked read surfaces as a 503, not a hung test.
    const d = env.driver({ fileTimeoutMs: 5_000 });
    const h = await d.acquire(`fifo-${process.pid}`, TEAM, policy());
    await d.exec(h, { command: "mkfifo pipe && echo ok > normal.txt" });
    await expect(d.readFile(h, "pipe")).rejects.toMatchObject({ status: 400, code: "not_a_file" });
    const swapper = await d.exec(h, {
      command:
        "setsid sh -c 'while :; do echo text > a.tmp; mv -f a.tmp race.txt; mkfifo f.tmp; mv -f f.tmp race.txt; done' >/dev/null 2>&1 < /dev/null & until [ -e race.txt ]; do :; done; echo started",
    });
    expect(swapper.stdout.trim()).toBe("started");
    const outcomes = new Map<string, number>();
    for (let round = 0; round < 40; round++) {
      // The command returns once the loop is running in its own session (it outlives the command's group).
      // Eight at a time: twice libuv's four threads.
      const reads = await Promise.allSettled(Array.from({ length: 8 }, () => d.readFile(h, "race.txt")));
      for (const r of reads) {
        const key =
          r.status === "fulfilled"
            ? `content:${r.value.content.trim()}`
            : r.reason instanceof SandboxRequestError
              ? `${r.reason.status}:${r.reason.code}`
              : `error:${(r.reason as Error).message}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    }
    for (const key of outcomes.keys()) expect(key).toMatch(/^(content:(text)?|400:not_a_file|404:not_found)$/);
    expect(outcomes.get("400:not_a_file")).toBeGreaterThan(0);
    expect((await d.readFile(h, "normal.txt")).content).toBe("ok\n");
    expect((await d.listFiles(h, ".")).entries.map((e) => e.path)).toContain("normal.txt");
    expect((await d.exec(h, { command: "echo alive" })).stdout).toBe("alive\n");
  });
});
