// What an operator sees of a run, end to end through real processes: a message posted to the
// real web API (`next start`) with a caller's traceparent is answered by a real `keel worker`
// (model on a loopback OpenAI-compatible stand-in, the exec tool in a local sandbox). Its trace
// (request → run → claim, model calls, tool call → sandbox acquire) arrives at a loopback OTLP/HTTP
// receiver that decodes the protobuf with the official definitions; its figures are on the
// worker's own /metrics, read with Prometheus' own text-format parser (test/prom). Secrets and contents stay out.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { freePort } from "@keel/cli/embedded-postgres";
import { useFixture } from "@keel/core/testing/fixture";
import { startFakeOpenAI, textStream, toolCallStream, type FakeOpenAI } from "@keel/core/testing/fake-openai";
import { adminClient, ensureBuild, startServer, type RunningServer } from "@keel/server/testing/harness";
import { waitFor } from "@keel/test/db";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "@keel/test/otlp";
import { parsePrometheusText, promFamily as family, promSample as sample, type PromFamily } from "@keel/test/prom";
import { useKeelWorkers } from "./keel-workers.js";

const f = useFixture();
const workers = useKeelWorkers(f);

// Texts that must never leave a process in a span: the model provider's key, the message, the
// tool's arguments and output, the model's answer, the caller's Keel API key.
const MODEL_KEY = `sk-model-${randomBytes(12).toString("hex")}`;
const MESSAGE = `please-list-${randomBytes(6).toString("hex")}`;
const TOOL_HEX = randomBytes(6).toString("hex");
/** What the tool prints; its arguments do not contain it (printf joins the two words). */
const TOOL_OUTPUT = `tool-said-${TOOL_HEX}`;
const ANSWER = `answer-${randomBytes(6).toString("hex")}`;
const CALLER_TRACE = randomBytes(16).toString("hex");
const CALLER_SPAN = randomBytes(8).toString("hex");

let receiver: OtlpReceiver;
let model: FakeOpenAI;
let server: RunningServer;
let apiKey = "";
let teamId = "";

beforeAll(async () => {
  ensureBuild();
  receiver = await startOtlpReceiver();
  model = await startFakeOpenAI();
  server = await startServer(f.url, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "50" });
  ({ apiKey, teamId } = await adminClient(server.url));
}, 900_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
  await receiver?.close();
});

async function call(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(server.url + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function runStatus(runId: string): Promise<string> {
  const { rows } = await f.pool.query<{ status: string }>("SELECT status FROM runs WHERE id = $1", [runId]);
  return rows[0]!.status;
}

const metricsOf = async (url: string, headers: Record<string, string> = {}): Promise<PromFamily[]> => {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
};
const histogramCount = (fs: PromFamily[], name: string, labels: Record<string, string> = {}) => sample(fs, name, labels)?.count ?? 0;

test("a posted message's trace reaches the OTLP receiver under the caller's trace id, and its figures are on the worker's /metrics", async () => {
  const agent = await call("/api/v1/agents", { name: "observed", model: "gpt-4o-mini", tools: ["exec"] });
  expect(agent.status).toBe(201);
  const session = await call("/api/v1/sessions", { agentId: agent.body.id });
  expect(session.status).toBe(201);
  model.enqueue(
    { kind: "stream", chunks: toolCallStream([{ id: "call_1", name: "exec", args: JSON.stringify({ command: `printf '%s-%s' tool-said ${TOOL_HEX}` }) }]) },
    { kind: "stream", chunks: textStream(ANSWER) },
  );
  const metricsPort = await freePort();
  const worker = workers.start({
    KEEL_OPENAI_BASE_URL: model.url,
    KEEL_OPENAI_API_KEY: MODEL_KEY,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "50",
    KEEL_WORKER_METRICS_PORT: String(metricsPort),
    KEEL_WORKER_METRICS_HOST: "127.0.0.1",
  });

  const posted = await call(`/api/v1/sessions/${session.body.id}/messages`, { content: MESSAGE }, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` });
  expect(posted.status).toBe(202);
  await waitFor(async () => (await runStatus(posted.body.runId)) === "succeeded", { timeoutMs: 60_000, what: "the run to succeed" });
  // The model saw the tool's output: the tool really ran in the sandbox.
  expect(model.requests[1]!.json.messages.at(-1)).toMatchObject({ role: "tool", content: expect.stringContaining(TOOL_OUTPUT) });
  expect(model.requests[0]!.headers.authorization).toBe(`Bearer ${MODEL_KEY}`);

  // The trace: one trace id, the caller's, from the web's request span down to the sandbox.
  const names = ["POST /api/v1/sessions/{id}/messages", "keel.run", "keel.run.claim", "keel.model.call", "keel.tool.call", "keel.sandbox.acquire"];
  const inTrace = () => receiver.spans.filter((s) => s.traceId === CALLER_TRACE);
  await waitFor(() => names.every((n) => inTrace().some((s) => s.name === n)) && inTrace().filter((s) => s.name === "keel.model.call").length === 2, {
    timeoutMs: 30_000,
    what: "the run's spans at the OTLP receiver",
  });
  const spans = inTrace();
  const one = (name: string): ReceivedSpan => {
    const found = spans.filter((s) => s.name === name);
    expect(found, name).toHaveLength(1);
    return found[0]!;
  };
  const request = one("POST /api/v1/sessions/{id}/messages");
  const run = one("keel.run");
  expect(request).toMatchObject({ parentSpanId: CALLER_SPAN, serviceName: "keel-web", kind: 2 /* SERVER */ });
  expect(request.attributes).toMatchObject({ "http.request.method": "POST", "http.route": "/api/v1/sessions/{id}/messages", "http.response.status_code": 202 });
  expect(run).toMatchObject({ parentSpanId: request.spanId, serviceName: "keel-worker" });
  expect(run.attributes).toMatchObject({
    "keel.run.id": posted.body.runId,
    "keel.session.id": session.body.id,
    "keel.team.id": teamId,
    "keel.run.outcome": "succeeded",
  });
  expect(one("keel.run.claim").parentSpanId).toBe(run.spanId);
  const modelCalls = spans.filter((s) => s.name === "keel.model.call");
  for (const m of modelCalls) {
    expect(m).toMatchObject({ parentSpanId: run.spanId, kind: 3 /* CLIENT */, status: { code: 0 } });
    expect(m.attributes).toMatchObject({ "gen_ai.request.model": "gpt-4o-mini" });
    expect(m.attributes["keel.model.first_token_ms"]).toBeGreaterThanOrEqual(0);
  }
  const tool = one("keel.tool.call");
  expect(tool).toMatchObject({ parentSpanId: run.spanId, status: { code: 0 } });
  expect(tool.attributes).toMatchObject({ "gen_ai.tool.name": "exec", "gen_ai.tool.call.id": "call_1" });
  expect(one("keel.sandbox.acquire")).toMatchObject({ parentSpanId: tool.spanId, attributes: { "keel.sandbox.driver": "local" } });
  // Children start no earlier than the run and end no later (clock order on one host).
  for (const s of [...modelCalls, tool]) expect(s.startTimeUnixNano >= run.startTimeUnixNano && s.endTimeUnixNano <= run.endTimeUnixNano).toBe(true);

  // Nothing secret or said left in any span: every exported byte is searched, attribute values and all.
  const exported = Buffer.concat(receiver.bodies).toString("latin1");
  for (const text of [MODEL_KEY, apiKey, MESSAGE, TOOL_OUTPUT, ANSWER]) expect(exported.includes(text), text.slice(0, 12)).toBe(false);
  for (const s of receiver.spans) expect(JSON.stringify(s.attributes)).not.toMatch(/sk-model-|kk_|printf|tool-said/);

  // The worker's own /metrics: this run's figures.
  const m = await metricsOf(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(histogramCount(m, "keel_run_dispatch_seconds")).toBe(1);
  expect(histogramCount(m, "keel_run_duration_seconds", { outcome: "succeeded" })).toBe(1);
  expect(histogramCount(m, "keel_model_call_seconds", { outcome: "ok" })).toBe(2);
  expect(histogramCount(m, "keel_model_first_token_seconds")).toBe(2);
  expect(histogramCount(m, "keel_tool_call_seconds", { tool: "exec", outcome: "ok" })).toBe(1);
  expect(histogramCount(m, "keel_sandbox_acquire_seconds", { driver: "local", outcome: "ok" })).toBe(1);
  expect(sample(m, "keel_events_appended_total", { type: "assistant_message" })?.value).toBe(2);
  expect(sample(m, "keel_events_appended_total", { type: "tool_result" })?.value).toBe(1);
  expect(family(m, "keel_worker_process_cpu_seconds_total")?.type).toBe("COUNTER");
  // The bucket counts are cumulative and end at the count: a well-formed histogram.
  const toolFigures = sample(m, "keel_tool_call_seconds", { tool: "exec", outcome: "ok" })!;
  expect(toolFigures.buckets!.at(-1)).toEqual({ le: "+Inf", count: 1 });
  expect(toolFigures.sum).toBeGreaterThan(0);
  // Anything but GET /metrics is a JSON 404.
  const other = await fetch(`http://127.0.0.1:${metricsPort}/nope`);
  expect(other.status).toBe(404);
  expect(((await other.json()) as { error: { code: string } }).error.code).toBe("not_found");

  // A malformed traceparent is ignored: 202, and the run's spans start a new trace of their own.
  model.enqueue({ kind: "stream", chunks: textStream("fine") });
  const bad = await call(`/api/v1/sessions/${session.body.id}/messages`, { content: "again" }, { traceparent: `00-${"z".repeat(32)}-${CALLER_SPAN}-01` });
  expect(bad.status).toBe(202);
  await waitFor(async () => (await runStatus(bad.body.runId)) === "succeeded", { timeoutMs: 60_000, what: "the second run" });
  const runSpanOf = () => receiver.spans.find((s) => s.name === "keel.run" && s.attributes["keel.run.id"] === bad.body.runId);
  await waitFor(() => runSpanOf() !== undefined, { timeoutMs: 30_000, what: "the second run's span" });
  const second = runSpanOf()!;
  expect(second.traceId).not.toBe(CALLER_TRACE);
  expect(second.traceId).toMatch(/^[0-9a-f]{32}$/);
  const secondRequest = receiver.spans.find((s) => s.spanId === second.parentSpanId)!;
  expect(secondRequest).toMatchObject({ name: "POST /api/v1/sessions/{id}/messages", parentSpanId: "", traceId: second.traceId });

  worker.child.kill("SIGTERM");
  expect(await worker.exited).toBe(0);
  expect(receiver.refused).toEqual([]);

  // With no worker, a posted message waits: the web's /metrics shows the team's queue.
  const waiting = await call(`/api/v1/sessions/${session.body.id}/messages`, { content: "queued" });
  expect(waiting.status).toBe(202);
  const web = await metricsOf(`${server.url}/metrics`);
  expect(sample(web, "keel_queue_depth", { team_id: teamId })?.value).toBe(1);
  expect(sample(web, "keel_queue_oldest_age_seconds", { team_id: teamId })?.value).toBeGreaterThanOrEqual(0);
  expect(family(web, "keel_web_http_requests_total")?.type).toBe("COUNTER");
}, 240_000);
