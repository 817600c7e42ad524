// The engine's figures through a real Worker on a real Postgres, read back with Prometheus' own
// parser; the worker's metrics port over real HTTP; the traceparent rule (a malformed one starts a
// new trace, never an error). The end-to-end trace is worker/test/observability.test.ts.
import { trace } from "@opentelemetry/api";
import { afterEach, expect, test } from "vitest";
import { waitFor } from "@keel/test/db";
import { parsePrometheusText, promSample } from "@keel/test/prom";
import { claimRun } from "../src/engine/lifecycle.js";
import { RetryableStepError } from "../src/engine/types.js";
import { MetricsServer, metricsAuthorized } from "../src/telemetry/metrics-server.js";
import { registerQueueMetrics } from "../src/telemetry/metrics.js";
import { Telemetry, traceContextOf } from "../src/telemetry/telemetry.js";
import { useFixture } from "./fixture.js";
import { synthetic } from "./steps.js";

const f = useFixture();
const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

const runStatus = async (runId: string) => (await f.client.getRun({ teamId: f.teamId, runId })).status;

test("a run taken over from a dead worker, retried once, then done: takeover, dispatch, outcomes and events are counted", async () => {
  const telemetry = new Telemetry();
  registerQueueMetrics(telemetry.registry, f.pool);
  const sessionId = await f.newSession();
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "a" });
  // A worker that heartbeat 2 s ago and died holding the run (its lock is not held by anyone).
  await f.pool.query(
    "INSERT INTO workers (id, lock_key, version, hostname, pid, heartbeat_at) VALUES ('dead-worker', 990001, 't', 'h', 1, now() - interval '2 seconds')",
  );
  expect((await claimRun(f.pool, "dead-worker", 60_000))!.id).toBe(runId);
  const before = await parsePrometheusText(await telemetry.registry.metrics());
  expect(promSample(before, "keel_queue_depth", { team_id: f.teamId })).toBeUndefined(); // running, not queued

  let calls = 0;
  await f.startWorker({
    telemetry,
    step: async (ctx) => {
      await ctx.append(synthetic("step", {}));
      if (++calls === 1) throw new RetryableStepError("provider down", "model_unavailable");
      return "done";
    },
  });
  await waitFor(async () => (await runStatus(runId)) === "succeeded", { what: "the run to succeed" });

  const m = await parsePrometheusText(await telemetry.registry.metrics());
  expect(promSample(m, "keel_run_takeovers_total", { reason: "owner_gone" })?.value).toBe(1);
  const takeover = promSample(m, "keel_run_takeover_seconds")!;
  expect(takeover.count).toBe(1);
  expect(takeover.sum).toBeGreaterThanOrEqual(2);
  expect(promSample(m, "keel_run_dispatch_seconds")?.count).toBe(2); // after the takeover, and after the retry's delay
  expect(promSample(m, "keel_run_duration_seconds", { outcome: "retrying" })?.count).toBe(1);
  expect(promSample(m, "keel_run_duration_seconds", { outcome: "succeeded" })?.count).toBe(1);
  expect(promSample(m, "keel_events_appended_total", { type: "step" })?.value).toBe(2);
  await f.pool.query("DELETE FROM workers WHERE id = 'dead-worker'");
});

test("queue depth and the oldest due run's age, by team, read at scrape", async () => {
  const telemetry = new Telemetry();
  registerQueueMetrics(telemetry.registry, f.pool);
  const s1 = await f.newSession();
  const s2 = await f.newSession();
  await f.client.postMessage({ teamId: f.teamId, sessionId: s1, content: "a" });
  await f.client.postMessage({ teamId: f.teamId, sessionId: s2, content: "b" });
  await f.pool.query("UPDATE runs SET available_at = now() - interval '3 seconds' WHERE session_id = $1", [s1]);
  const m = await parsePrometheusText(await telemetry.registry.metrics());
  expect(promSample(m, "keel_queue_depth", { team_id: f.teamId })?.value).toBe(2);
  expect(promSample(m, "keel_queue_oldest_age_seconds", { team_id: f.teamId })?.value).toBeGreaterThanOrEqual(3);
  await f.client.cancel({ teamId: f.teamId, sessionId: s1 });
  await f.client.cancel({ teamId: f.teamId, sessionId: s2 });
  const after = await parsePrometheusText(await telemetry.registry.metrics());
  expect(promSample(after, "keel_queue_depth", { team_id: f.teamId })).toBeUndefined();
});

test("the metrics port: Prometheus text with the token, a JSON 401 without it, a JSON 404 elsewhere", async () => {
  const telemetry = new Telemetry();
  telemetry.metrics.eventsAppended.inc({ type: "user_message" });
  const token = "t".repeat(24);
  const server = new MetricsServer({ registry: telemetry.registry, port: 0, host: "127.0.0.1", token });
  servers.push(server);
  const base = `http://127.0.0.1:${await server.start()}`;
  const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  expect(ok.status).toBe(200);
  expect(promSample(await parsePrometheusText(await ok.text()), "keel_events_appended_total", { type: "user_message" })?.value).toBe(1);
  for (const authorization of [undefined, `Bearer ${token}x`, `bearer ${token}`, token]) {
    const res = await fetch(`${base}/metrics`, { headers: authorization ? { authorization } : {} });
    expect(res.status, authorization).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    expect(await res.json()).toEqual({ error: { code: "unauthorized", message: expect.stringContaining("KEEL_METRICS_TOKEN"), details: {} } });
  }
  for (const [method, p] of [
    ["GET", "/"],
    ["GET", "/metrics/x"],
    ["POST", "/metrics"],
  ] as const) {
    const res = await fetch(base + p, { method, headers: { authorization: `Bearer ${token}` } });
    expect(res.status, `${method} ${p}`).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  }
  expect(metricsAuthorized(undefined, undefined)).toBe(true);
});

test("traceparent: a valid header is continued; a malformed one is ignored (a new trace starts)", () => {
  const ok = traceContextOf("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  expect(trace.getSpanContext(ok)).toMatchObject({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", isRemote: true });
  for (const bad of [
    null,
    "",
    "garbage",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", // no flags
    "00-00000000000000000000000000000000-b7ad6b7169203331-01", // all-zero trace id
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // all-zero span id
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // version ff is invalid
    "00-0AF7651916CD43DD8448EB211C80319Z-b7ad6b7169203331-01",
    `00-${"a".repeat(5000)}-b7ad6b7169203331-01`,
  ])
    expect(trace.getSpanContext(traceContextOf(bad)), String(bad).slice(0, 60)).toBeUndefined();
  // With tracing off, a request's span passes the caller's context through; a malformed one gives none.
  const telemetry = new Telemetry();
  expect(telemetry.request("POST", "/x", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").traceparent).toBe(
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  );
  expect(telemetry.request("POST", "/x", "00-zz-b7ad6b7169203331-01").traceparent).toBeUndefined();
});
