// Local sandbox driver figures (issue 5): cold acquire (a new session's sandbox: directories,
// bubblewrap, runtime start, first /healthz), warm acquire (reattach check of a live sandbox),
// exec round trip (`true`) and a tool call (acquire + exec, what a step does per tool call).
//
//   npm run bench:sandbox                      (= tsx bench/src/sandbox-local.ts)
//   BENCH_SBX_COLD=100 BENCH_SBX_EXEC=1000 npm run bench:sandbox
//
// No Postgres: the driver's store is optional and not used here. Needs bubblewrap (bwrap);
// exits 1 with the reason when it is missing or cannot create namespaces. Every sandbox is
// released and the temp dir (runtime bundle, sandboxes) removed, also on error and Ctrl-C.
// The markdown table goes to stdout, progress and the load average to stderr.
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LocalSandboxDriver, parseSandboxPolicy, type SandboxHandle } from "@keel/core";
import { buildRuntime } from "@keel/sandbox/build";
import { distTable, load, log } from "./util.js";

const coldCount = Number(process.env.BENCH_SBX_COLD ?? 100);
const execCount = Number(process.env.BENCH_SBX_EXEC ?? 1000);
const command = "npm run bench:sandbox";

const tmp = await mkdtemp(path.join(os.tmpdir(), "keel-bench-sbx-"));
await chmod(tmp, 0o711);
const handles: SandboxHandle[] = [];
let driver: LocalSandboxDriver | undefined;
let cleaned: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const h of handles.splice(0)) await driver?.release(h).catch((e) => log(`release ${h.sessionId} failed: ${(e as Error).message}`));
    await rm(tmp, { recursive: true, force: true });
  })();
  return cleaned;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: releasing ${handles.length} sandbox(es) and removing ${tmp}`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  log(`building the runtime bundle into ${tmp}`);
  driver = new LocalSandboxDriver({ baseDir: path.join(tmp, "sandboxes"), runtimeScript: await buildRuntime(path.join(tmp, "runtime.mjs")) });
  const health = await driver.health();
  if (!health.ok) {
    console.error(`bench:sandbox needs bubblewrap: ${health.message}`);
    process.exitCode = 1;
  } else {
    const policy = parseSandboxPolicy({});
    const teamId = randomUUID();
    const loadBefore = load();
    log(`load ${loadBefore}; ${coldCount} cold acquires`);
    const t0 = Date.now();

    // Each cold sandbox but the first is released right away (timed), so at most two are live.
    const cold: number[] = [];
    const rel: number[] = [];
    for (let i = 0; i < coldCount; i++) {
      let t = performance.now();
      const x = await driver.acquire(randomUUID(), teamId, policy);
      cold.push(performance.now() - t);
      handles.push(x);
      if (i === 0) continue;
      t = performance.now();
      await driver.release(handles.pop()!);
      rel.push(performance.now() - t);
    }
    const h = handles[0]!;
    log(`${execCount} × (warm acquire, exec, tool call) on one sandbox`);
    const warm: number[] = [];
    const exec: number[] = [];
    const toolCall: number[] = [];
    for (let i = 0; i < execCount; i++) {
      let t = performance.now();
      await driver.acquire(h.sessionId, teamId, policy);
      warm.push(performance.now() - t);
      t = performance.now();
      await driver.exec(h, { command: "true", idempotencyKey: `bench-${i}` });
      exec.push(performance.now() - t);
      t = performance.now();
      await driver.acquire(h.sessionId, teamId, policy);
      await driver.exec(h, { command: "true", idempotencyKey: `bench-tool-${i}` });
      toolCall.push(performance.now() - t);
    }
    await driver.release(handles.pop()!);
    const loadAfter = load();
    log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${loadAfter}`);

    const rows: [string, number[]][] = [
      ["Cold acquire (new sandbox: dirs, bwrap, runtime start, first /healthz)", cold],
      ["Warm acquire (reattach: pid + /healthz check)", warm],
      ["Exec round trip (`true`, with idempotency key)", exec],
      ["Tool call (warm acquire + exec `true`)", toolCall],
      ["Release (stop runtime, remove dirs)", rel],
    ];
    const out = [
      `Command: \`${command}\` (BENCH_SBX_COLD=${coldCount}, BENCH_SBX_EXEC=${execCount})`,
      `Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), Node ${process.version}, ${os.platform()} ${os.release()}`,
      `Load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`,
      "",
      ...distTable("Local driver (bubblewrap)", rows),
    ];
    console.log(out.join("\n"));
  }
} finally {
  await cleanup();
}
