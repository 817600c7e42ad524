// What the local egress proxy costs: cold acquire with policy none vs an allow-list (the proxy
// process starts with the sandbox), HTTP request round trips from inside the sandbox through the
// proxy (plain forward and a CONNECT tunnel per request) against the same requests made directly
// on the host, and the proxy process's memory.
//
//   npm run bench:egress                       (= tsx bench/src/sandbox-egress.ts)
//   BENCH_EGRESS_COLD=20 BENCH_EGRESS_REQ=500 npm run bench:egress
//
// Needs bubblewrap. The target is a loopback HTTP server reached as `api.test` through the
// driver's static host map. Markdown table to stdout, progress to stderr; everything released.
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { LocalSandboxDriver, parseSandboxPolicy, type SandboxHandle } from "@keel/core";
import { buildRuntime } from "@keel/sandbox/build";
import { distTable, load, log } from "./util.js";

const coldCount = Number(process.env.BENCH_EGRESS_COLD ?? 20);
const reqCount = Number(process.env.BENCH_EGRESS_REQ ?? 500);

// Runs inside the sandbox: n sequential requests, each on a new connection, timed in-process.
const inside = (mode: "forward" | "connect", port: number, n: number) => `node -e '
const http = require("http"); const net = require("net");
const one = () => new Promise((ok, bad) => {
  const t = performance.now();
  if (${JSON.stringify(mode)} === "forward") {
    http.get({ host: "127.0.0.1", port: 3128, path: "http://api.test:${port}/", agent: false }, (r) => { r.resume(); r.on("end", () => ok(performance.now() - t)); }).on("error", bad);
  } else {
    const s = net.connect(3128, "127.0.0.1", () => s.write("CONNECT api.test:${port} HTTP/1.1\\r\\nHost: api.test:${port}\\r\\n\\r\\n"));
    let buf = ""; let open = false;
    s.on("data", (d) => { buf += d; if (!open && buf.includes("\\r\\n\\r\\n")) { open = true; buf = ""; s.write("GET / HTTP/1.1\\r\\nHost: api.test\\r\\nConnection: close\\r\\n\\r\\n"); } });
    s.on("end", () => { s.destroy(); ok(performance.now() - t); }); s.on("error", bad);
  }
});
(async () => { const xs = []; for (let i = 0; i < ${n}; i++) xs.push(await one()); console.log(JSON.stringify(xs)); })();
'`;

const tmp = await mkdtemp(path.join(os.tmpdir(), "keel-bench-egress-"));
await chmod(tmp, 0o711);
const handles: SandboxHandle[] = [];
let driver: LocalSandboxDriver | undefined;
const api = http.createServer((_req, res) => res.end("ok\n"));
try {
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
  const port = (api.address() as AddressInfo).port;
  driver = new LocalSandboxDriver({
    baseDir: path.join(tmp, "sandboxes"),
    runtimeScript: await buildRuntime(path.join(tmp, "runtime.mjs")),
    egressHosts: { "api.test": "127.0.0.1" },
  });
  const health = await driver.health();
  if (!health.ok) throw new Error(`bench:egress needs bubblewrap: ${health.message}`);
  const none = parseSandboxPolicy({});
  const allow = parseSandboxPolicy({ egress: { allow: ["api.test"] } });
  const teamId = randomUUID();
  const loadBefore = load();
  const t0 = Date.now();
  const cold = { none: [] as number[], allow: [] as number[] };
  log(`load ${loadBefore}; ${coldCount} cold acquires per policy`);
  for (let i = 0; i < coldCount; i++) {
    for (const [name, policy] of [
      ["none", none],
      ["allow", allow],
    ] as const) {
      const t = performance.now();
      const h = await driver.acquire(randomUUID(), teamId, policy);
      cold[name].push(performance.now() - t);
      await driver.release(h);
    }
  }
  const h = await driver.acquire(randomUUID(), teamId, allow);
  handles.push(h);
  log(`${reqCount} requests per mode`);
  const run = async (mode: "forward" | "connect") => {
    const r = await driver!.exec(h, { command: inside(mode, port, reqCount), timeoutMs: 600_000 });
    if (r.exitCode !== 0) throw new Error(`${mode}: ${r.stderr}`);
    return JSON.parse(r.stdout) as number[];
  };
  const forward = await run("forward");
  const connect = await run("connect");
  const direct: number[] = [];
  for (let i = 0; i < reqCount; i++) {
    const t = performance.now();
    await new Promise<void>((ok, bad) =>
      http
        .get({ host: "127.0.0.1", port, path: "/", agent: false }, (r) => {
          r.resume();
          r.on("end", ok);
        })
        .on("error", bad),
    );
    direct.push(performance.now() - t);
  }
  const rec = JSON.parse(await readFile(path.join(tmp, "sandboxes", teamId, h.sessionId, "sandbox.json"), "utf8")) as { egressPid: number };
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${rec.egressPid}/status`, "utf8"))?.[1] ?? NaN);
  const loadAfter = load();
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${loadAfter}`);
  const rows: [string, number[]][] = [
    ["Cold acquire, egress none (no proxy)", cold.none],
    ["Cold acquire, egress allow-list (+ proxy process)", cold.allow],
    ["HTTP request on the host, direct (baseline)", direct],
    ["HTTP request from the sandbox through the proxy (forward)", forward],
    ["HTTP request from the sandbox through a CONNECT tunnel", connect],
  ];
  console.log(
    [
      `Command: \`npm run bench:egress\` (BENCH_EGRESS_COLD=${coldCount}, BENCH_EGRESS_REQ=${reqCount})`,
      `Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; ${os.cpus().length} cores, Node ${process.version}; load average ${loadBefore} before, ${loadAfter} after`,
      "",
      ...distTable("Local egress proxy", rows),
      "",
      `Egress proxy process RSS: ${(rssKb / 1024).toFixed(0)} MiB (one per sandbox with an allow-list).`,
    ].join("\n"),
  );
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  for (const x of handles.splice(0)) await driver?.release(x).catch(() => {});
  api.close();
  await rm(tmp, { recursive: true, force: true });
}
