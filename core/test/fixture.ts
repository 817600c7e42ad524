// Shared set-up for engine tests: a fresh database, the real pool and engine objects, a team
// with an agent, and in-process workers that are all stopped after each test.
import { afterAll, afterEach, beforeAll } from "vitest";
import { createLogger, silentLogger } from "../src/logger.js";
import { createPool, type Pool } from "../src/db/pool.js";
import { EngineClient } from "../src/engine/client.js";
import { Worker, type WorkerOptions } from "../src/engine/worker.js";
import { Tenancy } from "../src/tenancy.js";
import { createTestDatabase } from "@keel/test/db";

export type Fixture = {
  url: string;
  pool: Pool;
  tenancy: Tenancy;
  client: EngineClient;
  teamId: string;
  agentId: string;
  newSession(): Promise<string>;
  startWorker(opts: Partial<WorkerOptions> & Pick<WorkerOptions, "step">): Promise<Worker>;
};

export const testLogger = process.env.KEEL_TEST_LOG ? createLogger({ level: "debug" }) : silentLogger;

export function useFixture(): Fixture {
  const f = {} as Fixture;
  let drop: () => Promise<void>;
  const workers = new Set<Worker>();
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    f.url = db.url;
    f.pool = createPool(db.url, { max: 20 });
    f.tenancy = new Tenancy({ pool: f.pool });
    f.client = new EngineClient({ pool: f.pool, maxAttempts: 3 });
    const team = await f.tenancy.createTeam({ slug: "acme", name: "Acme" });
    f.teamId = team.id;
    f.agentId = (await f.tenancy.createAgent(team.id, { name: "helper", model: "demo" })).id;
    f.newSession = async () => (await f.tenancy.createSession(f.teamId, { agentId: f.agentId })).id;
    f.startWorker = async (opts) => {
      const w = new Worker({
        pool: f.pool,
        connectionString: f.url,
        logger: testLogger,
        leaseMs: 30_000,
        pollMs: 200,
        sweepMs: 50,
        retryBaseMs: 20,
        retryMaxMs: 100,
        ...opts,
      });
      workers.add(w);
      await w.start();
      return w;
    };
  });
  afterEach(async () => {
    await Promise.all([...workers].map((w) => w.stop({ drainMs: 1_000 })));
    workers.clear();
    // Each test starts with an empty queue: leftovers would be claimed by the next test's step.
    await f.pool.query("UPDATE runs SET status = 'cancelled', lease_owner = NULL WHERE status IN ('queued', 'running')");
  });
  afterAll(async () => {
    await f.pool?.end();
    await drop?.();
  });
  return f;
}
