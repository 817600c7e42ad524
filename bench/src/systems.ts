// One Postgres server, one database per system, and the bench's view of each system: enqueue
// one job, enqueue a backlog, count completed jobs, clear leftovers, run an in-process worker.
import { rm } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { makeWorkerUtils, run, type WorkerUtils } from "graphile-worker";
import PgBoss from "pg-boss";
import { startEmbeddedPostgres } from "@keel/cli/embedded-postgres";
import { createPool, EngineClient, migrate, type Pool, silentLogger, Tenancy, Worker } from "@keel/core";
import { GRAPHILE_WORKER, graphileLogger, JOB_NAME, KEEL_WORKER, PGBOSS_CONSTRUCTOR, PGBOSS_POLL_S, PGBOSS_TAKEOVER_JOB, type Sys } from "./config.js";
import { mapLimit, nowMs } from "./util.js";

const repo = path.resolve(import.meta.dirname, "../..");

export type Server = { url: (db: string) => string; version: string; stop: () => Promise<void> };

/** BENCH_DATABASE_URL (an admin URL) if given, else a private embedded PostgreSQL. Creates the 3 databases. */
export async function startServer(): Promise<Server> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const names: Record<string, string> = {};
  let url: (db: string) => string;
  let stopServer = async () => {};
  if (process.env.BENCH_DATABASE_URL) {
    const admin = new URL(process.env.BENCH_DATABASE_URL);
    url = (db) => Object.assign(new URL(admin), { pathname: `/${db}` }).toString();
  } else {
    // Under the repo (not a 0700 mkdtemp): as root, Postgres runs as a `postgres` user that must reach it.
    const dir = path.resolve(import.meta.dirname, `../.tmp/pg-${process.pid}`);
    const epg = await startEmbeddedPostgres({ dir, persistent: false, settings: ["track_commit_timestamp=on"] });
    url = epg.url;
    stopServer = async () => (await epg.stop(), await rm(dir, { recursive: true, force: true }));
  }
  const admin = new pg.Client({ connectionString: url("postgres") });
  await admin.connect();
  const version = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  for (const s of ["keel", "graphile", "pgboss"]) {
    names[s] = `bench_${s}_${suffix}`;
    await admin.query(`CREATE DATABASE ${names[s]}`);
  }
  await admin.end();
  return {
    url: (s) => url(names[s] ?? s),
    version,
    stop: async () => {
      if (process.env.BENCH_DATABASE_URL) {
        const a = new pg.Client({ connectionString: url("postgres") });
        await a.connect();
        for (const n of Object.values(names)) await a.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`).catch(() => {});
        await a.end();
      }
      await stopServer();
    },
  };
}

/** A job started: `at` = handler start (this process); `dbClaimAt` = the claim time the database recorded, when the job carries it. */
export type Started = { id: string; at: number; dbClaimAt?: number };
export interface System {
  sys: Sys;
  url: string;
  /** The table an enqueue inserts the job into (its id column is the job id the worker sees). */
  jobTable: string;
  /** Enqueues one job; resolves once the enqueue committed. */
  enqueue(opts?: { takeover?: boolean }): Promise<string>;
  enqueueBacklog(n: number): Promise<void>;
  /** Jobs completed so far (monotonic). */
  doneCount(): Promise<number>;
  /** Removes queued/running leftovers after a scenario (its workers are gone). */
  clear(): Promise<void>;
  /** A worker in this process whose job records when it starts (for dispatch latency). */
  startLocalWorker(onStart: (s: Started) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export async function keelSystem(url: string, sessionsNeeded: number): Promise<System & { pool: Pool }> {
  await migrate({ connectionString: url, migrationsDir: path.join(repo, "prisma/migrations") });
  const pool = createPool(url, { max: 20, applicationName: "bench-keel" });
  const tenancy = new Tenancy({ pool });
  const client = new EngineClient({ pool });
  const team = await tenancy.createTeam({ slug: "bench", name: "Bench" });
  const agent = await tenancy.createAgent(team.id, { name: "bench", model: "demo" });
  const sessions = await mapLimit(Array.from({ length: sessionsNeeded }), 16, async () => (await tenancy.createSession(team.id, { agentId: agent.id })).id);
  let next = 0;
  // Runs of one session execute one at a time and a message to a session with a queued run joins
  // that run, so every enqueue goes to the next session in turn (its previous run is long over).
  const post = async () =>
    (await client.postMessage({ teamId: team.id, sessionId: sessions[next++ % sessions.length]!, content: "hi", onBusy: "enqueue" })).runId;
  return {
    sys: "keel",
    url,
    jobTable: "runs",
    pool,
    enqueue: post,
    enqueueBacklog: async (n) => {
      if (n > sessions.length) throw new Error(`backlog ${n} needs ${n} sessions; have ${sessions.length}`);
      await mapLimit(Array.from({ length: n }), 16, post);
    },
    doneCount: async () => (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM runs WHERE status = 'succeeded'")).rows[0]!.n,
    clear: async () =>
      void (await pool.query(
        "UPDATE runs SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, finished_at = now() WHERE status IN ('queued', 'running')",
      )),
    startLocalWorker: async (onStart) => {
      const wpool = createPool(url, { max: 4, applicationName: "bench-keel-worker" });
      const w = new Worker({
        pool: wpool,
        connectionString: url,
        logger: silentLogger,
        ...KEEL_WORKER,
        step: async (ctx) => (onStart({ id: ctx.run.id, at: nowMs() }), "done"),
      });
      await w.start();
      return async () => (await w.stop(), await wpool.end());
    },
    close: async () => {
      await pool.end();
    },
  };
}

export async function graphileSystem(url: string): Promise<System> {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, logger: graphileLogger });
  await utils.migrate();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on("error", () => {});
  let enqueued = 0;
  return {
    sys: "graphile",
    url,
    jobTable: "graphile_worker._private_jobs",
    enqueue: async () => (enqueued++, String((await utils.addJob(JOB_NAME, {})).id)),
    enqueueBacklog: async (n) => {
      for (let i = 0; i < n; i += 1000) await utils.addJobs(Array.from({ length: Math.min(1000, n - i) }, () => ({ identifier: JOB_NAME, payload: {} })));
      enqueued += n;
    },
    // Completed jobs are deleted: done = enqueued − still in the table (cleared ones count as gone too).
    doneCount: async () => enqueued - (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")).rows[0]!.n,
    clear: async () => void (await pool.query("DELETE FROM graphile_worker._private_jobs")),
    startLocalWorker: async (onStart) => {
      const runner = await run({
        connectionString: url,
        ...GRAPHILE_WORKER,
        logger: graphileLogger,
        taskList: { [JOB_NAME]: async (_p, helpers) => onStart({ id: String(helpers.job.id), at: nowMs(), dbClaimAt: helpers.job.locked_at?.getTime() }) },
      });
      return () => runner.stop();
    },
    close: async () => (await utils.release(), await pool.end()),
  };
}

export async function pgbossSystem(url: string): Promise<System> {
  // The producer is its own instance: pg-boss wakes a worker early only when the job was sent
  // through the same instance (notifyWorker), which a separate API process would not be.
  const boss = new PgBoss({ connectionString: url, max: 4, supervise: false, schedule: false });
  boss.on("error", () => {});
  await boss.start();
  await boss.createQueue(JOB_NAME);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on("error", () => {});
  return {
    sys: "pgboss",
    url,
    jobTable: "pgboss.job",
    enqueue: async (opts) => (await boss.send(JOB_NAME, {}, opts?.takeover ? PGBOSS_TAKEOVER_JOB : {}))!,
    enqueueBacklog: async (n) => {
      for (let i = 0; i < n; i += 1000) await boss.insert(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: JOB_NAME, data: {} })));
    },
    doneCount: async () =>
      (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'", [JOB_NAME])).rows[0]!.n,
    clear: async () => void (await pool.query("DELETE FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')", [JOB_NAME])),
    startLocalWorker: async (onStart) => {
      const w = new PgBoss({ connectionString: url, ...PGBOSS_CONSTRUCTOR, supervise: false });
      w.on("error", () => {});
      await w.start();
      await w.work(JOB_NAME, { batchSize: 1, pollingIntervalSeconds: PGBOSS_POLL_S, includeMetadata: true }, async (jobs) => {
        for (const j of jobs) onStart({ id: j.id, at: nowMs(), dbClaimAt: new Date(j.startedOn).getTime() });
      });
      return () => w.stop({ graceful: true, wait: true, timeout: 5_000 });
    },
    close: async () => (await boss.stop({ graceful: false, wait: true }), await pool.end()),
  };
}
