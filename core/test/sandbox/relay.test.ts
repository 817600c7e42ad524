// The web's side of the sandbox relay (core/src/sandbox/relay.ts) where no sandbox is needed: real
// PostgreSQL, real LISTEN/NOTIFY. The whole path through a worker and the Kubernetes driver, on the
// real control plane: view-k8s.test.ts.
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { SandboxRelayClient, SandboxRelayServer } from "../../src/sandbox/relay.js";
import { SandboxStore } from "../../src/sandbox/store.js";
import { SessionSandboxes } from "../../src/sandbox/view.js";
import { testLogger, useFixture } from "../fixture.js";
import { policy, useSandboxEnv } from "./helpers.js";

const f = useFixture();
const env = useSandboxEnv();
const clients: SandboxRelayClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
});

function webView(filesTimeoutMs = 1_500) {
  const remote = new SandboxRelayClient({
    pool: f.pool,
    connectionString: f.url,
    driverName: "kubernetes",
    logger: testLogger,
    filesTimeoutMs,
    startTimeoutMs: filesTimeoutMs,
  });
  clients.push(remote);
  return new SessionSandboxes({ db: f.pool, store: new SandboxStore(f.pool), remote });
}

const pending = async () => Number((await f.pool.query<{ n: string }>(`SELECT count(*) AS n FROM sandbox_requests`)).rows[0]!.n);

describe("session view through the relay, web side", () => {
  it("answers 409 for a sandbox that is not running without asking any worker", async () => {
    const view = webView();
    const sessionId = await f.newSession();
    await expect(view.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({ status: 409, code: "sandbox_not_running", details: { state: null } });
    const store = new SandboxStore(f.pool);
    await store.record({ id: randomUUID(), teamId: f.teamId, sessionId, driver: "kubernetes", state: "suspended", lastError: null, lastActiveAt: new Date() });
    await expect(view.readFile(f.teamId, sessionId, "a.txt")).rejects.toMatchObject({
      status: 409,
      code: "sandbox_not_running",
      details: { state: "suspended" },
    });
    // The view knows the workers' driver: a suspended kubernetes sandbox is theirs, files come back when it runs.
    expect(await view.describe(f.teamId, sessionId)).toMatchObject({ sandbox: { state: "suspended", driver: "kubernetes" }, filesAvailable: false });
    await expect(view.listFiles(randomUUID(), sessionId, ".")).rejects.toMatchObject({ status: 404 });
    expect(await pending()).toBe(0);
  });

  it("answers 503 naming the workers when none takes the request, and leaves no row behind", async () => {
    const view = webView();
    const sessionId = await f.newSession();
    await new SandboxStore(f.pool).record({
      id: randomUUID(),
      teamId: f.teamId,
      sessionId,
      driver: "kubernetes",
      state: "ready",
      lastError: null,
      lastActiveAt: new Date(),
    });
    expect(await view.describe(f.teamId, sessionId)).toMatchObject({ filesAvailable: true });
    await expect(view.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({
      status: 503,
      code: "sandbox_unavailable",
      message: "no worker took the request within 1.5 s: are workers running with KEEL_SANDBOX_DRIVER=kubernetes?",
    });
    await expect(view.start(f.teamId, sessionId)).rejects.toMatchObject({ status: 503, code: "sandbox_unavailable" });
    expect(await pending()).toBe(0);
  });

  it("a worker of another driver does not take the request; the worker's refusal reaches the web as it was", async () => {
    const view = webView();
    const sessionId = await f.newSession();
    const sandboxId = randomUUID();
    await new SandboxStore(f.pool).record({
      id: sandboxId,
      teamId: f.teamId,
      sessionId,
      driver: "kubernetes",
      state: "ready",
      lastError: null,
      lastActiveAt: new Date(),
    });
    // A local-driver worker's view: the row says kubernetes, so its own checks refuse (503, driver named).
    const start = (driverName: string) => {
      const s = new SandboxRelayServer({
        pool: f.pool,
        connectionString: f.url,
        driverName,
        workerId: `w-${driverName}`,
        logger: testLogger,
        view: new SessionSandboxes({ db: f.pool, store: new SandboxStore(f.pool) }),
      });
      return s.start().then(() => s);
    };
    const local = await start("local");
    await expect(view.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({
      status: 503,
      message: expect.stringContaining("no worker took the request"),
    });
    await local.stop();
    const k8s = await start("kubernetes");
    // This worker has no driver at all: its SessionSandboxes refuses, and the web gets that refusal.
    await expect(view.readFile(f.teamId, sessionId, "a.txt")).rejects.toMatchObject({
      status: 503,
      code: "sandbox_unavailable",
      message: "this process has no sandbox driver",
    });
    await k8s.stop();
    expect(await pending()).toBe(0);
  });
});

describe("session view through the relay, worker side", () => {
  it("a row asking for more than the routes allow gets the routes' limit (5000 entries)", async () => {
    const store = new SandboxStore(f.pool);
    const driver = env.driver({ store });
    const sessionId = await f.newSession();
    const h = await driver.acquire(sessionId, f.teamId, policy());
    const made = await driver.exec(h, { command: "mkdir many && cd many && seq 1 5001 | xargs touch && ls | wc -l" });
    expect(made.stdout.trim()).toBe("5001");
    const server = new SandboxRelayServer({
      pool: f.pool,
      connectionString: f.url,
      driverName: "local",
      workerId: "w-limits",
      logger: testLogger,
      view: new SessionSandboxes({ db: f.pool, store, driver: () => driver }),
    });
    await server.start();
    try {
      // Written as anyone with the database could write it (the web's client never asks for this much).
      const id = randomUUID();
      await f.pool.query(
        `INSERT INTO sandbox_requests (id, team_id, session_id, driver, op, args, deadline_at) VALUES ($1, $2, $3, 'local', 'list', $4, now() + interval '30 seconds')`,
        [id, f.teamId, sessionId, JSON.stringify({ path: "many", maxEntries: 10_000 })],
      );
      await f.pool.query(`SELECT pg_notify('keel_sandbox_requests', $1)`, [id]);
      const reply = await waitForReply(id);
      expect(reply.ok).toBe(true);
      expect({ entries: reply.value.entries.length, truncated: reply.value.truncated }).toEqual({ entries: 5000, truncated: true });
    } finally {
      await server.stop();
      await driver.release(h);
    }
  });
});

async function waitForReply(id: string): Promise<{ ok: boolean; value: { entries: unknown[]; truncated: boolean } }> {
  for (;;) {
    const { rows } = await f.pool.query<{ reply: string | null }>(`SELECT reply FROM sandbox_requests WHERE id = $1`, [id]);
    if (rows[0]?.reply) return JSON.parse(rows[0].reply);
    await new Promise((r) => setTimeout(r, 50));
  }
}
