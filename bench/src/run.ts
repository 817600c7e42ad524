// `npm run bench`: Keel's run engine, graphile-worker and pg-boss side by side on one Postgres.
// Prints a markdown report on stdout (progress on stderr) and saves it under bench/.tmp/.
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import path from "node:path";
import { LABEL, PGBOSS_BIG_BATCH, PGBOSS_POLL_S, SYSTEMS, type Sys } from "./config.js";
import { killLeftovers } from "./procs.js";
import { installCommitProbe } from "./commit-time.js";
import { dispatch, takeover, throughput, type DispatchResult, type TakeoverResult, type ThroughputResult } from "./scenarios.js";
import { graphileSystem, keelSystem, pgbossSystem, startServer, type Server, type System } from "./systems.js";
import { dist, fmtMs, load, log } from "./util.js";

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const N_DISPATCH = env("BENCH_DISPATCH_N", 200);
const N_DISPATCH_PGBOSS = env("BENCH_DISPATCH_N_PGBOSS", 60); // ~0.5 s per sample: pg-boss polls
const KILLS = env("BENCH_KILLS", 20);
const BOUND_MS = env("BENCH_TAKEOVER_BOUND_MS", 30_000);
const WINDOW_MS = env("BENCH_WINDOW_MS", 4_000);
const WORKERS = [1, 2, 4];
const BACKLOG: Record<string, number> = { keel: env("BENCH_BACKLOG_KEEL", 2_000), graphile: 5_000, pgboss: 150, pgbossBatch: 5_000 };

type Results = {
  dispatch: Partial<Record<Sys, DispatchResult>>;
  throughput: Record<string, ThroughputResult[]>;
  takeover: Partial<Record<Sys, TakeoverResult>>;
  load: string[];
};

async function main(): Promise<void> {
  const started = new Date();
  const r: Results = { dispatch: {}, throughput: {}, takeover: {}, load: [`start ${load()}`] };
  log(`load average (1/5/15 min) at start: ${load()}`);
  let server: Server | null = null;
  const systems: System[] = [];
  // Ctrl-C (or a closed pipe) must not leave the private Postgres or worker processes behind.
  const abort = (sig: string) => {
    log(`${sig}: cleaning up`);
    killLeftovers();
    void Promise.allSettled(systems.map((s) => s.close()))
      .then(() => server?.stop())
      .finally(() => process.exit(130));
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE"] as const) process.once(sig, () => abort(sig));
  try {
    server = await startServer();
    log(`PostgreSQL ${server.version} up`);
    const keel = await keelSystem(server.url("keel"), BACKLOG.keel!);
    systems.push(keel, await graphileSystem(server.url("graphile")), await pgbossSystem(server.url("pgboss")));
    const bySys = Object.fromEntries(systems.map((s) => [s.sys, s])) as Record<Sys, System>;

    for (const sys of SYSTEMS) {
      log(`dispatch: ${sys}`);
      const probe = await installCommitProbe(bySys[sys].url, bySys[sys].jobTable);
      const res = await dispatch(bySys[sys], sys === "pgboss" ? N_DISPATCH_PGBOSS : N_DISPATCH, sys === "pgboss" ? PGBOSS_POLL_S * 1000 : 45);
      if (probe) {
        const committed = await probe.read(res.ids);
        await probe.remove();
        res.ids.forEach((id, i) => {
          const c = committed.get(id);
          if (c === undefined) return;
          res.fromCommit.push(res.ackAt[i]! + res.samples[i]! - c);
          res.ackLag.push(res.ackAt[i]! - c);
        });
      }
      r.dispatch[sys] = res;
      log(`  p50 ${fmtMs(dist(res.samples).p50)} p99 ${fmtMs(dist(res.samples).p99)} lost ${res.lost}; from commit p50 ${fmtMs(dist(res.fromCommit).p50)}`);
    }
    // Keel's claim as the database recorded it (runs.claimed_at, millisecond precision).
    const kd = r.dispatch.keel!;
    const { rows } = await keel.pool.query<{ id: string; ms: number }>(
      "SELECT id, extract(epoch FROM claimed_at) * 1000 AS ms FROM runs WHERE id = ANY($1::uuid[])",
      [kd.ids],
    );
    const claimed = new Map(rows.map((x) => [x.id, Number(x.ms)]));
    kd.dbClaim = kd.ids.map((id, i) => claimed.get(id)! - kd.ackAt[i]!);
    r.load.push(`after dispatch ${load()}`);

    const tp: [string, System, Record<string, string>][] = [
      ["keel", bySys.keel, {}],
      ["graphile", bySys.graphile, {}],
      ["pgboss", bySys.pgboss, {}],
      ["pgbossBatch", bySys.pgboss, { BENCH_PGBOSS_BATCH: String(PGBOSS_BIG_BATCH) }],
    ];
    for (const [key, s, e] of tp) {
      r.throughput[key] = [];
      for (const w of WORKERS) {
        log(`throughput: ${key} × ${w}`);
        const res = await throughput(s, w, BACKLOG[key]!, WINDOW_MS, e);
        r.throughput[key]!.push(res);
        log(`  ${res.perSec.toFixed(0)} jobs/s (${res.done} done in ${res.seconds.toFixed(1)} s)`);
      }
    }
    r.load.push(`after throughput ${load()}`);

    for (const sys of SYSTEMS) {
      // graphile-worker cannot recover a crashed job before its 4-hour lock expires: one bounded kill shows it.
      const kills = sys === "graphile" ? 1 : KILLS;
      log(`takeover: ${sys} (${kills} kills, bound ${BOUND_MS / 1000} s)`);
      r.takeover[sys] = await takeover(bySys[sys], kills, BOUND_MS);
      const d = dist(r.takeover[sys]!.samples);
      log(`  p50 ${fmtMs(d.p50)} p99 ${fmtMs(d.p99)} not recovered ${r.takeover[sys]!.notRecovered}`);
    }
    r.load.push(`end ${load()}`);
  } finally {
    killLeftovers();
    for (const s of systems) await s.close().catch((e: unknown) => log(`close ${s.sys}: ${(e as Error).message}`));
    // A library pool that still holds an idle connection sees it terminated as the server stops
    // (57P01, admin_shutdown); that is expected here and must not crash the report.
    process.on("uncaughtException", (e: Error & { code?: string }) => {
      if (e.code !== "57P01") throw e;
    });
    await server?.stop();
  }
  const md = report(r, started, (Date.now() - started.getTime()) / 1000);
  const dir = path.resolve(import.meta.dirname, "../.tmp");
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "results.md"), md);
  await writeFile(path.join(dir, "results.json"), JSON.stringify(r, null, 1));
  console.log(md);
}

function report(r: Results, started: Date, seconds: number): string {
  const cell = (xs: number[] | undefined) => (xs && xs.length ? `${fmtMs(dist(xs).p50)} / ${fmtMs(dist(xs).p99)}` : "n/a");
  const tpCell = (key: string) => (r.throughput[key] ?? []).map((t) => (Number.isFinite(t.perSec) ? t.perSec.toFixed(0) : "n/a")).join(" / ");
  const toCell = (t: TakeoverResult | undefined) => {
    if (!t) return "n/a";
    const rec = t.samples.length ? `${cell(t.samples)} (${t.samples.length}/${t.kills} kills recovered)` : "";
    return t.notRecovered ? `${rec}${rec ? "; " : ""}> ${t.boundMs / 1000} s (not recovered, ${t.notRecovered}/${t.kills} kills)` : rec;
  };
  const d = r.dispatch;
  const lines = [
    `## Results (${started.toISOString()}, ${seconds.toFixed(0)} s)`,
    ``,
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}. Load average (1/5/15 min): ${r.load.join("; ")}.`,
    ``,
    `| | Keel | graphile-worker | pg-boss |`,
    `|---|---|---|---|`,
    `| Dispatch latency p50 / p99 (commit instant → handler start) | ${cell(d.keel?.fromCommit)} (n=${d.keel?.fromCommit.length}) | ${cell(d.graphile?.fromCommit)} (n=${d.graphile?.fromCommit.length}) | ${cell(d.pgboss?.fromCommit)} (n=${d.pgboss?.fromCommit.length}) |`,
    `| Dispatch latency p50 / p99 (enqueue call resolved → handler start) | ${cell(d.keel?.samples)} (n=${d.keel?.samples.length}) | ${cell(d.graphile?.samples)} (n=${d.graphile?.samples.length}) | ${cell(d.pgboss?.samples)} (n=${d.pgboss?.samples.length}) |`,
    `| Producer lag p50 / p99 (commit instant → enqueue call resolved) | ${cell(d.keel?.ackLag)} | ${cell(d.graphile?.ackLag)} | ${cell(d.pgboss?.ackLag)} |`,
    `| Dispatch to the database's claim timestamp p50 / p99 (ms precision) | ${cell(d.keel?.dbClaim)} (runs.claimed_at) | ${cell(d.graphile?.dbClaim)} (jobs.locked_at) | ${cell(d.pgboss?.dbClaim)} (job.started_on) |`,
    `| Throughput, jobs/s with 1 / 2 / 4 worker processes | ${tpCell("keel")} | ${tpCell("graphile")} | ${tpCell("pgboss")} (batchSize 1); ${tpCell("pgbossBatch")} (batchSize ${PGBOSS_BIG_BATCH}) |`,
    `| Takeover after SIGKILL p50 / p99 | ${toCell(r.takeover.keel)} | ${toCell(r.takeover.graphile)} | ${toCell(r.takeover.pgboss)} |`,
    ``,
    `Lost dispatches (no start within 15 s): ${SYSTEMS.map((s) => `${s} ${d[s]?.lost ?? "n/a"}`).join(", ")}.`,
    `Throughput detail: ${Object.entries(r.throughput)
      .map(([k, ts]) => `${k}: ${ts.map((t) => `${t.workers}w ${t.done} jobs/${t.seconds.toFixed(1)} s`).join(", ")}`)
      .join("; ")}.`,
  ];
  // The goal is "message committed → run claimed": judged from the commit instant when the
  // server tracks it, else from the enqueue call's return (the older, biased stand-in).
  const fromCommit = (d.keel?.fromCommit.length ?? 0) > 0 && (d.graphile?.fromCommit.length ?? 0) > 0;
  const kd = dist((fromCommit ? d.keel?.fromCommit : d.keel?.samples) ?? []);
  const gd = dist((fromCommit ? d.graphile?.fromCommit : d.graphile?.samples) ?? []);
  const kt = dist(r.takeover.keel?.samples ?? []);
  lines.push(
    ``,
    `Goals (dispatch measured from the ${fromCommit ? "commit instant" : "enqueue call's return"}): Keel dispatch p50 ≤ graphile-worker's: ${kd.p50 <= gd.p50 ? "MET" : "NOT MET"} (${fmtMs(kd.p50)} vs ${fmtMs(gd.p50)}). ` +
      `Keel takeover p50 < 1 s: ${kt.p50 < 1000 && !r.takeover.keel?.notRecovered ? "MET" : "NOT MET"} (${fmtMs(kt.p50)}).`,
  );
  return lines.join("\n") + "\n";
}

process.on("exit", killLeftovers);
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
