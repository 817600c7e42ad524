// Local sandbox driver figures: cold acquire (a new session's sandbox: directories, bubblewrap,
// runtime start, first /healthz), warm acquire (reattach check), and exec round trip (`true`).
//   npx tsx core/test/sandbox/bench-local.ts [coldCount=20] [execCount=200]
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { buildRuntime } from "../../../sandbox/src/build.js";
import { LocalSandboxDriver } from "../../src/sandbox/local-driver.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";

const coldCount = Number(process.argv[2] ?? 20);
const execCount = Number(process.argv[3] ?? 200);
const tmp = await mkdtemp(path.join(os.tmpdir(), "keel-bench-sbx-"));
await chmod(tmp, 0o711);
const driver = new LocalSandboxDriver({ baseDir: path.join(tmp, "sandboxes"), runtimeScript: await buildRuntime(path.join(tmp, "runtime.mjs")) });
const policy = parseSandboxPolicy({});
const teamId = randomUUID();

function stats(name: string, ms: number[]): void {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  console.log(`${name.padEnd(28)} n=${String(s.length).padEnd(4)} p50=${q(0.5)} ms  p99=${q(0.99)} ms  max=${s[s.length - 1]!.toFixed(1)} ms`);
}

try {
  const cold: number[] = [];
  const handles = [];
  for (let i = 0; i < coldCount; i++) {
    const t = performance.now();
    handles.push(await driver.acquire(randomUUID(), teamId, policy));
    cold.push(performance.now() - t);
  }
  const h = handles[0]!;
  const warm: number[] = [];
  const exec: number[] = [];
  const toolCall: number[] = [];
  for (let i = 0; i < execCount; i++) {
    let t = performance.now();
    await driver.acquire(h.sessionId, teamId, policy);
    warm.push(performance.now() - t);
    t = performance.now();
    await driver.exec(h, { command: "true", ...(process.env.BENCH_NO_KEY ? {} : { idempotencyKey: `bench-${i}` }) });
    exec.push(performance.now() - t);
    t = performance.now();
    await driver.acquire(h.sessionId, teamId, policy);
    await driver.exec(h, { command: "true", idempotencyKey: `bench-tool-${i}` });
    toolCall.push(performance.now() - t);
  }
  console.log(`local sandbox driver (bubblewrap ${driver.name}), ${os.cpus().length} cores`);
  stats("cold acquire", cold);
  stats("warm acquire (reattach)", warm);
  stats("exec round trip (true)", exec);
  stats("tool call (acquire+exec)", toolCall);
  for (const x of handles) await driver.release(x);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
