// `kubectl rollout restart` of the worker and the web Deployments while 20 sessions are mid-turn
// (each agent's exec running in its own sandbox pod, each turn's sleep a different length so
// events keep coming all through the rollouts), with one SSE client per session that reconnects
// with Last-Event-ID whenever its stream ends: every run completes, seqs stay gapless, no command
// runs twice, and each client received every event of its session's log exactly once. The
// figures (events lost, duplicates, the longest time a client was without a stream) are printed
// and written to e2e/.out/ (BENCHMARKS.md, "Rollout on kind").
//
// Capacity: every sandbox pod requests 100m CPU (core/src/sandbox/k8s/objects.ts); a 2-CPU kind
// node holds ~12 next to Keel's own pods, so kind/cluster.yaml has two worker nodes, and the kind
// overlay runs 12 runs per worker (KEEL_WORKER_CONCURRENCY) so all 20 turns are in flight at once.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { dist, fmtMs, load } from "@keel/bench/util";
import { Api, kubectlAsync, kubectlJson, releaseSandbox, repoRoot, sandboxPodsAsync, waitFor } from "./kind.ts";
import { compareWithLog, ResumingStream } from "./sse.ts";

const N = Number(process.env.KEEL_E2E_ROLLOUT_SESSIONS ?? 20);
/** Sandbox pods' CPU request, and what the two rollouts' extra pods request (a worker and a web pod, each with its migrate init container). */
const SANDBOX_CPU_M = 100;
const SURGE_CPU_M = 200 + 100 + 2 * 50;

let api: Api;
const sessions: string[] = [];
const streams: ResumingStream[] = [];

beforeAll(async () => {
  api = await Api.login();
  const free = freeCpuMillis();
  if (free < N * SANDBOX_CPU_M + SURGE_CPU_M) {
    throw new Error(
      `the cluster's schedulable nodes have ${free}m CPU unrequested; ${N} sandbox pods (${SANDBOX_CPU_M}m each) and the rollouts' extra pods need ${N * SANDBOX_CPU_M + SURGE_CPU_M}m. ` +
        "kind/cluster.yaml has two worker nodes since this test runs 20 sessions; a cluster created before has one: recreate it (kind/down.sh && kind/up.sh), or set KEEL_E2E_ROLLOUT_SESSIONS lower",
    );
  }
  // maxProcesses (RLIMIT_NPROC) is counted per UID by the kernel, and on Kubernetes every sandbox
  // pod (and Keel's own pods) run as uid 1000 in the node's user namespace: with the default 256,
  // ~17 sandbox runtimes on one kernel (all kind nodes share the host's) leave none, and commands
  // fail with "Cannot fork". Raised here so the rollout is what is tested (reported separately).
  for (let i = 0; i < N; i++) sessions.push((await api.agentSession(`e2e-rollout-${Date.now()}-${i}`, { resources: { maxProcesses: 4096 } })).sessionId);
  // Every session's sandbox pod first, five at a time (twenty cold PVC-backed pods at once can
  // outlast the driver's 120 s ready timeout on 2 cores): the turns below then all start at once.
  for (let i = 0; i < N; i += 5) {
    const batch = sessions.slice(i, i + 5);
    const runs = await Promise.all(batch.map((s) => postMessage(s, "run echo sandbox-ready")));
    for (const runId of runs) expect(await runFinished(runId, "a warm-up turn")).toBe("succeeded");
  }
});

afterAll(async () => {
  await Promise.all(streams.map((s) => s.stop()));
  for (const s of sessions) releaseSandbox(s);
});

async function postMessage(sessionId: string, content: string): Promise<string> {
  return (await api.call<{ runId: string }>("POST", `/api/v1/sessions/${sessionId}/messages`, { content })).runId;
}

async function runFinished(runId: string, what: string): Promise<string> {
  return waitFor(
    async () => {
      const r = await api.call<{ status: string }>("GET", `/api/v1/runs/${runId}`);
      return ["succeeded", "failed", "cancelled", "interrupted"].includes(r.status) ? r.status : null;
    },
    { what: `${what} (run ${runId}) to finish`, timeoutMs: 300_000 },
  );
}

function cpuMillis(q: string | undefined): number {
  if (!q) return 0;
  return q.endsWith("m") ? Number(q.slice(0, -1)) : Math.round(Number(q) * 1000);
}

/** CPU not yet requested on the nodes pods can be scheduled on (no NoSchedule taint). */
function freeCpuMillis(): number {
  const nodes = kubectlJson<{ items: any[] }>(["get", "nodes"]).items.filter((n) => !(n.spec.taints ?? []).some((t: any) => t.effect === "NoSchedule"));
  const names = new Set(nodes.map((n) => n.metadata.name as string));
  const pods = kubectlJson<{ items: any[] }>(["get", "pods", "-A", "--field-selector=status.phase!=Succeeded,status.phase!=Failed"]).items;
  const requested = pods
    .filter((p) => names.has(p.spec.nodeName))
    .flatMap((p) => p.spec.containers as any[])
    .reduce((sum, c) => sum + cpuMillis(c.resources?.requests?.cpu), 0);
  return nodes.reduce((sum, n) => sum + cpuMillis(n.status.allocatable.cpu), 0) - requested;
}

/** Each session's once.txt (null: no pod or no file yet), read from all pods at once. */
async function onceFiles(ids: string[]): Promise<Map<string, string[] | null>> {
  const pods = await sandboxPodsAsync(ids);
  const read = await Promise.all(
    ids.map(async (s) => {
      const p = pods.get(s);
      if (!p) return null;
      const r = await kubectlAsync(["-n", p.namespace, "exec", p.name, "--", "cat", "/workspace/once.txt"]);
      return r.status === 0 ? r.stdout.trim().split("\n") : null;
    }),
  );
  return new Map(ids.map((s, i) => [s, read[i]!]));
}

/**
 * Waits until every session's once.txt has `line`, re-reading only the files that do not have it
 * yet (20 `kubectl exec` at a time are slow on a loaded machine); on timeout, says what each file
 * held and what `detail` knows about the session.
 */
async function waitForLine(line: string, what: string, timeoutMs: number, detail: (s: string) => unknown = () => null): Promise<Map<string, string[] | null>> {
  const seen = new Map<string, string[] | null>();
  try {
    await waitFor(
      async () => {
        const todo = sessions.filter((s) => !seen.get(s)?.includes(line));
        for (const [s, l] of await onceFiles(todo)) seen.set(s, l);
        return sessions.every((s) => seen.get(s)?.includes(line));
      },
      { what, timeoutMs, everyMs: 2000 },
    );
  } catch (err) {
    const state = sessions.filter((s) => !seen.get(s)?.includes(line)).map((s) => ({ session: s, onceTxt: seen.get(s) ?? null, detail: detail(s) }));
    throw new Error(`${(err as Error).message}; not there: ${JSON.stringify(state)}`);
  }
  return seen;
}

test(`rollout restart of worker and web with ${N} sessions mid-turn and an SSE client each: every run completes, seqs gapless, each command ran once, no event lost or repeated`, async () => {
  for (const s of sessions) streams.push(new ResumingStream(s, api.authHeaders));
  // Sleeps of 25 to 50 s (exec's default timeout is 60 s; 10 s left for a loaded machine): the
  // turns end one after another through both rollouts.
  const runs = await Promise.all(
    sessions.map((s, i) => postMessage(s, `run echo ran >> once.txt && sleep ${25 + Math.floor((25 * i) / Math.max(1, N - 1))} && echo done >> once.txt`)),
  );
  // Mid-turn: every session's command has started in its pod (and none has finished yet).
  const files = await waitForLine("ran", `all ${N} commands to start in their pods`, 120_000);
  expect([...files.values()].filter((l) => l!.includes("done"))).toEqual([]);

  // kubectlAsync from here on: a blocked event loop would stall the SSE clients and the figures.
  const t0 = Date.now();
  for (const args of [
    ["rollout", "restart", "deployment/keel-worker", "deployment/keel-web"],
    ["rollout", "status", "deployment/keel-worker", "--timeout=300s"],
    ["rollout", "status", "deployment/keel-web", "--timeout=300s"],
  ]) {
    const r = await kubectlAsync(["-n", "keel", ...args]);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  }
  const rolloutMs = Date.now() - t0;

  const statuses = [];
  for (const r of runs) statuses.push(await runFinished(r, "the turn begun before the rollout"));
  expect(statuses).toEqual(runs.map(() => "succeeded"));

  let indeterminate = 0;
  const execResults = new Map<string, unknown>();
  for (const s of sessions) {
    const events = await api.events(s);
    const seqs = events.map((e) => Number(e.seq));
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // One exec per turn: the engine never sent the rollout turn's command a second time (an
    // exec cut by a drain is reported `indeterminate`, not repeated).
    const results = events.filter((e) => e.type === "tool_result");
    expect(results).toHaveLength(2);
    execResults.set(s, results[1]!.payload);
    if (results[1]!.payload.state === "indeterminate") indeterminate++;
    else
      expect({ isError: results[1]!.payload.isError ?? false, exitCode: JSON.parse(results[1]!.payload.content).exitCode }).toEqual({
        isError: false,
        exitCode: 0,
      });
  }
  // Every command went on in its pod to the end, once.
  const finished = await waitForLine("done", "every command to finish in its pod", 180_000, (s) => execResults.get(s));
  for (const s of sessions) expect(finished.get(s)).toEqual(["ran", "done"]);

  // The streams: each client has caught up with its session's log, then received == log.
  const logs = new Map<string, { seq: bigint; createdAt: number }[]>();
  for (const s of sessions) {
    const events = (await api.call<{ events: { seq: string; createdAt: string }[] }>("GET", `/api/v1/sessions/${s}/events`)).events;
    logs.set(
      s,
      events.map((e) => ({ seq: BigInt(e.seq), createdAt: Date.parse(e.createdAt) })),
    );
  }
  await waitFor(() => streams.every((st, i) => st.last >= logs.get(sessions[i]!)!.at(-1)!.seq), {
    what: "every SSE client to catch up with its session's log",
    timeoutMs: 60_000,
  });
  let lost = 0;
  let duplicates = 0;
  const lagsMs: number[] = [];
  for (const [i, st] of streams.entries()) {
    const log = logs.get(sessions[i]!)!;
    const c = compareWithLog(
      st,
      log.map((e) => e.seq),
    );
    lost += c.lost.length;
    duplicates += c.duplicates;
    // Event created (Postgres's clock: same host as this process on kind) → first received, for
    // the events written while the client was following (the history before it came at once).
    lagsMs.push(Math.max(0, ...log.filter((e) => e.createdAt >= st.startedAt).map((e) => (st.arrivals.get(String(e.seq)) ?? Infinity) - e.createdAt)));
  }
  const pauses = streams.map((st) => st.longestPauseMs);
  const gaps = streams.map((st) => st.longestGapMs);
  const figures = {
    date: new Date().toISOString(),
    sessions: N,
    eventsLost: lost,
    duplicates,
    reconnects: streams.reduce((a, st) => a + st.reconnects, 0),
    shutdownFrames: streams.reduce((a, st) => a + st.goAways, 0),
    longestGapMs: dist(gaps),
    longestPauseMs: dist(pauses),
    longestEventLagMs: dist(lagsMs),
    indeterminateExecs: indeterminate,
    rolloutMs,
    load: load(),
    streamErrors: [...new Set(streams.flatMap((st) => st.errors))].slice(0, 5),
  };
  const out = path.join(repoRoot, "e2e/.out");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, `rollout-${figures.date.replace(/[:.]/g, "-")}.json`), JSON.stringify(figures, null, 2));
  process.stdout.write(
    `[e2e] rollout with ${N} sessions: events lost ${lost}, duplicates ${duplicates}, reconnects ${figures.reconnects}, ` +
      `longest gap between frames p50 ${fmtMs(figures.longestGapMs.p50)} max ${fmtMs(figures.longestGapMs.max)}, ` +
      `longest time without a stream p50 ${fmtMs(figures.longestPauseMs.p50)} max ${fmtMs(figures.longestPauseMs.max)}, ` +
      `event lag p50 ${fmtMs(figures.longestEventLagMs.p50)} max ${fmtMs(figures.longestEventLagMs.max)}, ` +
      `indeterminate execs ${indeterminate}, rollouts ${fmtMs(rolloutMs)}, load ${figures.load}\n`,
  );
  expect({ lost, duplicates }).toEqual({ lost: 0, duplicates: 0 });
  // Every client lived through the web rollout: its stream was ended at least once and resumed.
  expect(streams.filter((st) => st.reconnects === 0).length).toBe(0);
}, 1_200_000);
