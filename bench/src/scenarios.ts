// The three measurements. Each takes a System (systems.ts) and returns plain numbers.
import type { Sys } from "./config.js";
import { go, killAll, onMessage, spawnWorker, type Msg, type Proc } from "./procs.js";
import type { Started, System } from "./systems.js";
import { log, nowMs, sleep } from "./util.js";

/** samples: handler start − commit; dbClaim: database claim timestamp − commit (ms precision; Keel's is filled in by run.ts). */
export type DispatchResult = {
  samples: number[];
  dbClaim: number[];
  ids: string[];
  ackAt: number[];
  lost: number;
  /** Handler start − the commit instant Postgres recorded (commit-time.ts); empty when not tracked. */
  fromCommit: number[];
  /** Enqueue call resolved − the commit instant: how late the producer learns of its own commit. */
  ackLag: number[];
};

/**
 * Dispatch latency: one job at a time to an idle in-process worker (concurrency 1). t0 = the
 * enqueue call resolved (its transaction committed); t1 = the job's handler/step started. The
 * gap between jobs is random over [5, 5 + gapMs] ms so a polling worker is caught at random phases.
 */
export async function dispatch(s: System, n: number, gapMs: number, warmup = 5): Promise<DispatchResult> {
  const waiting = new Map<string, (st: Started) => void>();
  const early = new Map<string, Started>();
  const stop = await s.startLocalWorker((st) => {
    const w = waiting.get(st.id);
    if (w) w(st);
    else early.set(st.id, st);
  });
  await sleep(300);
  const out: DispatchResult = { samples: [], dbClaim: [], ids: [], ackAt: [], lost: 0, fromCommit: [], ackLag: [] };
  for (let i = 0; i < n + warmup; i++) {
    const id = await s.enqueue();
    const t0 = nowMs();
    const st =
      early.get(id) ??
      (await new Promise<Started | null>((resolve) => {
        const t = setTimeout(() => resolve(null), 15_000);
        waiting.set(id, (v) => (clearTimeout(t), resolve(v)));
      }));
    waiting.delete(id);
    if (st === null) out.lost++;
    else if (i >= warmup) {
      out.samples.push(st.at - t0);
      if (st.dbClaimAt !== undefined) out.dbClaim.push(st.dbClaimAt - t0);
      out.ids.push(id);
      out.ackAt.push(t0);
    }
    await sleep(5 + Math.random() * gapMs);
  }
  await stop();
  return out;
}

export type ThroughputResult = { workers: number; backlog: number; done: number; seconds: number; perSec: number };

/**
 * Throughput: a backlog of `backlog` jobs, then `workers` worker processes are told to go at
 * once. Rate = jobs completed between the first completion and the end (backlog drained, or
 * `windowMs` after the first completion), so process start-up is not counted.
 */
export async function throughput(s: System, workers: number, backlog: number, windowMs: number, env: Record<string, string> = {}): Promise<ThroughputResult> {
  await s.clear();
  await s.enqueueBacklog(backlog);
  const procs = await Promise.all(Array.from({ length: workers }, () => spawnWorker(s.sys, s.url, "throughput", env)));
  const base = await s.doneCount();
  const tGo = nowMs();
  await Promise.all(procs.map(go));
  let first: { t: number; c: number } | null = null;
  let last = { t: tGo, c: 0 };
  for (;;) {
    await sleep(50);
    const c = (await s.doneCount()) - base;
    const t = nowMs();
    last = { t, c };
    if (!first && c > 0) first = { t, c };
    if (c >= backlog) break;
    if (first && t - first.t > windowMs) break;
    if (!first && t - tGo > windowMs + 10_000) break;
  }
  await killAll(procs);
  await s.clear();
  const seconds = first ? (last.t - first.t) / 1000 : NaN;
  const perSec = first && last.t > first.t ? (last.c - first.c) / seconds : NaN;
  return { workers, backlog, done: last.c, seconds, perSec };
}

export type TakeoverResult = { samples: number[]; notRecovered: number; kills: number; boundMs: number };

/**
 * Takeover: two worker processes; a job is enqueued, one worker claims it and holds it (its
 * handler never returns); we SIGKILL that process and time until the other one claims the same
 * job (both timestamps are Date.now() on this machine). Then the job is released, the dead worker
 * is replaced (after the measurement, so its start-up does not compete), and we go again.
 */
export async function takeover(s: System, kills: number, boundMs: number): Promise<TakeoverResult> {
  const claims = new Map<string, { pid: number; at: number; proc: Proc }[]>();
  const done = new Set<string>();
  const off = onMessage((m: Msg, p: Proc) => {
    if (m.t === "claimed" && m.id) claims.set(m.id, [...(claims.get(m.id) ?? []), { pid: p.pid, at: m.at!, proc: p }]);
    if (m.t === "done" && m.id) done.add(m.id);
  });
  const spawn = () => spawnWorker(s.sys as Sys, s.url, "takeover");
  const procs = new Set<Proc>(await Promise.all([spawn(), spawn()]));
  const out: TakeoverResult = { samples: [], notRecovered: 0, kills: 0, boundMs };
  try {
    for (let k = 0; k < kills; k++) {
      await sleep(200 + Math.random() * 300); // a random phase of the sweep/poll timers
      const id = await s.enqueue({ takeover: true });
      const holder = await waitFor(() => claims.get(id)?.[0], 15_000);
      if (!holder) throw new Error(`${s.sys}: job ${id} was never claimed`);
      const tKill = Date.now();
      holder.proc.child.kill("SIGKILL");
      procs.delete(holder.proc);
      out.kills++;
      const next = await waitFor(() => claims.get(id)?.find((c) => c.pid !== holder.pid), boundMs);
      if (next) {
        out.samples.push(next.at - tKill);
        next.proc.send({ t: "release", id });
        await waitFor(() => done.has(id), 10_000);
      } else {
        out.notRecovered++;
        log(`${s.sys}: kill ${k + 1}: job not taken over within ${boundMs / 1000} s`);
      }
      await holder.proc.exited;
      procs.add(await spawn());
    }
  } finally {
    off();
    await killAll(procs);
    await s.clear();
  }
  return out;
}

async function waitFor<T>(f: () => T | undefined | false, timeoutMs: number): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(2);
  }
}
