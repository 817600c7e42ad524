// Runs the real built Next server (`next start`) on a free port against a test database, with an
// in-process worker driving the demo model. The build is reused when it is newer than every
// source file of server/ and core/; otherwise it is rebuilt first (~55 s on 2 cores).
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
// @ts-expect-error plain JS module shared with npm start and the global setup
import { ensureWebBuild } from "@keel/server/build";
import { freePort } from "@keel/cli/embedded-postgres";
import { api } from "@keel/core/contract/api";
import { ApiClient } from "@keel/core/contract/api-client";
import {
  builtinTools,
  createAgentStep,
  createModelResolver,
  createPool,
  notifyDeltas,
  outboundPolicy,
  silentLogger,
  ToolRegistry,
  Worker,
  type Pool,
} from "@keel/core";

export const serverDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const root = path.dirname(serverDir);
const nextBin = path.join(root, "node_modules/next/dist/bin/next");

export function ensureBuild(): { rebuilt: boolean; ms: number } {
  return ensureWebBuild();
}

export const ADMIN = { email: "admin@example.com", password: "correct horse battery" };

/**
 * Logs in as ADMIN (a cookie session) and creates an admin API key, through the typed client;
 * `client` uses the key and checks every answer against the route table's schema.
 */
export async function adminClient(
  url: string,
  keyName = "tests",
): Promise<{ client: ApiClient; apiKey: string; cookie: string; csrfToken: string; teamId: string }> {
  const login = await new ApiClient({ baseUrl: url }).send(api.auth.login, { body: ADMIN });
  const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  const { csrfToken, teamId } = (await login.json()) as { csrfToken: string; teamId: string };
  const browser = new ApiClient({ baseUrl: url, credentials: { cookie, csrfToken: () => csrfToken } });
  const { key: apiKey } = await browser.call(api.apiKeys.create, { body: { name: keyName, role: "admin" } });
  return { client: new ApiClient({ baseUrl: url, credentials: { apiKey }, validateResponses: true }), apiKey, cookie, csrfToken, teamId };
}

export type RunningServer = { url: string; proc: ChildProcess; output: () => string; stop: () => Promise<void> };

/**
 * Starts the built web process: `next start` by default, or with `entry: "keel"` the production
 * entry point `keel web` (what the Docker image runs; it owns graceful shutdown).
 */
export async function startServer(
  databaseUrl: string,
  env: Record<string, string> = {},
  fixedPort?: number,
  entry: "next" | "keel" = "next",
): Promise<RunningServer> {
  const port = fixedPort ?? (await freePort());
  let out = "";
  const args = entry === "keel" ? [path.join(root, "cli/bin/keel.mjs"), "web"] : [nextBin, "start", "-p", String(port), "-H", "127.0.0.1"];
  const proc = spawn(process.execPath, args, {
    cwd: entry === "keel" ? root : serverDir,
    env: {
      ...process.env,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      DATABASE_URL: databaseUrl,
      KEEL_ADMIN_EMAIL: ADMIN.email,
      KEEL_ADMIN_PASSWORD: ADMIN.password,
      KEEL_ADMIN_TEAM: "acme",
      KEEL_SECRETS_KEY: Buffer.alloc(32, 7).toString("base64"),
      KEEL_SSE_HEARTBEAT_MS: "300",
      KEEL_MIGRATIONS_DIR: path.join(root, "prisma/migrations"),
      KEEL_LOG_LEVEL: process.env.KEEL_TEST_LOG ? "debug" : "warn",
      PORT: String(port),
      KEEL_HOST: "127.0.0.1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  // `keel web` also loads the CLI through tsx first: ~16 s on a loaded 2-core machine, not ~1 s.
  const deadline = Date.now() + (entry === "keel" ? 120_000 : 30_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`next start exited ${proc.exitCode}:\n${out}`);
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${entry === "keel" ? "keel web" : "next start"} did not answer /healthz:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The tests' model stand-ins listen on loopback, an internal address: allowed here explicitly. */
export const LOOPBACK_PROVIDERS = outboundPolicy({ internal: ["127.0.0.1"] });

export async function startDemoWorker(url: string): Promise<{ pool: Pool; worker: Worker; stop: () => Promise<void> }> {
  const pool = createPool(url, { max: 8 });
  const step = createAgentStep({
    pool,
    logger: silentLogger,
    tools: new ToolRegistry(builtinTools),
    models: createModelResolver({ outbound: LOOPBACK_PROVIDERS }),
    onDelta: notifyDeltas(pool),
  });
  const worker = new Worker({ pool, connectionString: url, step, logger: silentLogger, leaseMs: 5_000, pollMs: 200, sweepMs: 50 });
  await worker.start();
  return { pool, worker, stop: async () => (await worker.stop({ drainMs: 1_000 }), await pool.end()) };
}

export type SseEvent = { id: string | null; event: string; data: string };

/** Reads an SSE response until `until` says stop (or the stream ends); returns the frames seen. */
export async function readSse(res: Response, until: (seen: SseEvent[]) => boolean, opts: { comments?: string[] } = {}): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const seen: SseEvent[] = [];
  let buf = "";
  try {
    while (!until(seen)) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const e: SseEvent = { id: null, event: "message", data: "" };
        const data: string[] = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) opts.comments?.push(line);
          else if (line.startsWith("id: ")) e.id = line.slice(4);
          else if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length || e.id) seen.push({ ...e, data: data.join("\n") });
        if (until(seen)) break;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return seen;
}
