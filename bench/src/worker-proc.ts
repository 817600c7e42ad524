// A real worker process for one system (BENCH_SYSTEM), driven by the bench over IPC.
//   BENCH_MODE=throughput: waits for {t:"go"}, then starts a worker whose step does nothing.
//   BENCH_MODE=takeover:   starts at once; each job reports {t:"claimed"} and then holds until the
//                          bench sends {t:"release", id} (or the process is SIGKILLed).
// Bundled with esbuild (procs.ts) so a start is a plain `node`, as in core/test/processes.ts.
import { run, type Runner } from "graphile-worker";
import PgBoss from "pg-boss";
import { createPool, silentLogger, Worker } from "@keel/core";
import { GRAPHILE_WORKER, graphileLogger, JOB_NAME, KEEL_WORKER, PGBOSS_CONSTRUCTOR, PGBOSS_POLL_S, type Sys } from "./config.js";

const sys = process.env.BENCH_SYSTEM as Sys;
const url = process.env.BENCH_DB_URL!;
const mode = process.env.BENCH_MODE as "throughput" | "takeover";
const batchSize = Number(process.env.BENCH_PGBOSS_BATCH ?? 1);

const send = (m: object) => process.send?.(m);
const held = new Map<string, () => void>();
process.on("message", (m: { t: string; id?: string }) => {
  if (m.t === "release" && m.id) held.get(m.id)?.();
  if (m.t === "go") void start().then(() => send({ t: "started" }));
});

/** What one job does: nothing (throughput), or report the claim and hold until released (takeover). */
async function handle(id: string): Promise<void> {
  if (mode === "throughput") return;
  const at = Date.now();
  await new Promise<void>((resolve) => {
    held.set(id, resolve);
    send({ t: "claimed", id, at, pid: process.pid });
  });
  held.delete(id);
  send({ t: "done", id });
}

async function start(): Promise<void> {
  if (sys === "keel") {
    const pool = createPool(url, { max: 4, applicationName: "bench-keel-worker" });
    const worker = new Worker({ pool, connectionString: url, logger: silentLogger, ...KEEL_WORKER, step: async (ctx) => (await handle(ctx.run.id), "done") });
    await worker.start();
  } else if (sys === "graphile") {
    const runner: Runner = await run({
      connectionString: url,
      ...GRAPHILE_WORKER,
      logger: graphileLogger,
      taskList: { [JOB_NAME]: async (_payload, helpers) => handle(String(helpers.job.id)) },
    });
    runner.promise.catch(() => {});
  } else {
    const boss = new PgBoss({ connectionString: url, ...PGBOSS_CONSTRUCTOR });
    boss.on("error", () => {});
    await boss.start();
    await boss.work(JOB_NAME, { batchSize, pollingIntervalSeconds: PGBOSS_POLL_S }, async (jobs) => {
      for (const j of jobs) await handle(j.id);
    });
  }
}

if (mode === "takeover") await start();
send({ t: "ready" });
