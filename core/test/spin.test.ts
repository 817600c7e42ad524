// No run can spin (issue 13, item 1): a provider that refuses connections, answers 500, hangs or
// closes mid-stream costs a bounded number of attempts with growing delays, ends in run_failed
// with the reason, and writes a handful of events. A provider's "Connection error." is not a
// database outage: only driver/pg codes say that.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createModelResolver } from "../src/agent/models.js";
import { outboundPolicy } from "../src/agent/outbound.js";
import { createAgentStep } from "../src/agent/loop.js";
import { builtinTools, ToolRegistry } from "../src/tools/tools.js";
import { ModelCallError } from "../src/agent/openai-client.js";
import { listSessions } from "../src/catalog.js";
import { createPool } from "../src/db/pool.js";
import { isConnectionError } from "../src/db/errors.js";
import { readAllEvents } from "../src/engine/events.js";
import { eventPayload } from "../src/engine/types.js";
import type { AgentConfig } from "../src/tenancy.js";
import { waitFor } from "@keel/test/db";
import { testLogger, useFixture } from "./fixture.js";
import { startFakeOpenAI, textStream, type FakeOpenAI, type ScriptedReply } from "./support/fake-openai.js";

const f = useFixture(); // EngineClient with maxAttempts 3
let fake: FakeOpenAI;
let refusedUrl: string;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  // A port that was just free and is closed again: connections to it are refused.
  const srv = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => srv.once("listening", r));
  refusedUrl = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/v1`;
  await new Promise((r) => srv.close(r));
});
afterAll(async () => {
  await fake?.close();
});

async function startWorker(retryBaseMs = 40) {
  const step = createAgentStep({
    pool: f.pool,
    tools: new ToolRegistry(builtinTools),
    models: createModelResolver({ outbound: outboundPolicy({ internal: ["127.0.0.1"] }) }) /* the dead providers are on loopback */,
    logger: testLogger,
  });
  return f.startWorker({ step, retryBaseMs, retryMaxMs: 10_000 });
}

async function session(baseUrl: string): Promise<string> {
  const provider: AgentConfig["provider"] = { kind: "openai-compatible", baseUrl, maxRetries: 0, timeoutMs: 300 };
  const agent = await f.tenancy.createAgent(f.teamId, { name: `spin-${Math.random().toString(36).slice(2, 8)}`, model: "gpt-test", provider, tools: [] });
  return (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;
}

type Retrying = { code: string; message: string; attempt: number; maxAttempts: number; delayMs: number; nextAttemptAt: string };

const cases: { name: string; reply?: ScriptedReply; reason: RegExp }[] = [
  { name: "refuses connections", reason: /model call failed: Connection error/ },
  {
    name: "answers 500",
    reply: { kind: "error", status: 500, body: { error: { message: "upstream exploded", type: "server_error" } } },
    reason: /answered 500/,
  },
  { name: "hangs", reply: { kind: "hang" }, reason: /timed out/i },
  { name: "closes mid-stream", reply: { kind: "stream", chunks: textStream("half a reply that never"), dropAfter: 2 }, reason: /model call failed/ },
];

describe("a dead provider", () => {
  test.each(cases)("that $name: bounded attempts, growing delays, run_failed with the reason", async ({ reply, reason }) => {
    await startWorker();
    const sessionId = await session(reply ? fake.url : refusedUrl);
    fake.handler = reply ? () => reply : undefined;
    const before = fake.requests.length;
    try {
      const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
      await waitFor(async () => (await f.client.getRun({ teamId: f.teamId, runId })).status === "failed", { timeoutMs: 20_000, what: "run failed" });
      const events = await readAllEvents(f.pool, sessionId);
      // The whole run: one message, one error per attempt, one retry notice between attempts, the end.
      expect(events.map((e) => e.type)).toEqual(["user_message", "model_error", "run_retrying", "model_error", "run_retrying", "model_error", "run_failed"]);
      const failed = eventPayload<{ code: string; message: string; attempts: number }>(events.at(-1)!);
      expect(failed).toMatchObject({ code: "model_unavailable", attempts: 3 });
      expect(failed.message).toMatch(reason);
      const retries = events.filter((e) => e.type === "run_retrying").map((e) => eventPayload<Retrying>(e));
      expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
      expect(retries.every((r) => r.code === "model_unavailable" && reason.test(r.message) && r.maxAttempts === 3)).toBe(true);
      // Full jitter between half and all of base·2^(n-1): attempt n+1 never waits less than attempt n.
      expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(20);
      expect(retries[1]!.delayMs).toBeGreaterThanOrEqual(retries[0]!.delayMs);
      expect(Date.parse(retries[1]!.nextAttemptAt)).toBeGreaterThan(Date.parse(retries[0]!.nextAttemptAt));
      const run = await f.client.getRun({ teamId: f.teamId, runId });
      expect(run).toMatchObject({ attempt: 2, nextAttemptAt: null, lastError: expect.objectContaining({ code: "model_unavailable" }) });
      // maxRetries 0: the SDK adds no calls of its own; one request per attempt reached the provider.
      expect(fake.requests.length - before).toBe(reply ? 3 : 0);
    } finally {
      fake.handler = undefined;
    }
  });

  test("while it retries, the session says so: attempt, next attempt time and the reason", async () => {
    await startWorker(60_000); // the second attempt is a minute away: the test reads the waiting state
    const sessionId = await session(refusedUrl);
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await waitFor(async () => (await readAllEvents(f.pool, sessionId)).some((e) => e.type === "run_retrying"), { timeoutMs: 10_000, what: "first retry" });
    const { sessions } = await listSessions(f.pool, f.teamId, { q: sessionId, limit: 1 });
    expect(sessions[0]!.activeRun).toMatchObject({ id: runId, status: "queued", attempt: 1, maxAttempts: 3, lastError: { code: "model_unavailable" } });
    const next = Date.parse(sessions[0]!.activeRun!.nextAttemptAt!);
    expect(next).toBeGreaterThan(Date.now());
    expect((await f.client.getRun({ teamId: f.teamId, runId })).nextAttemptAt?.getTime()).toBe(next);
    const types = (await readAllEvents(f.pool, sessionId)).map((e) => e.type);
    expect(types).toEqual(["user_message", "model_error", "run_retrying"]);
    expect(await f.client.cancel({ teamId: f.teamId, sessionId })).toEqual({ cancelled: [runId], stopping: [] });
  });
});

describe("database errors are classified by code", () => {
  test("a provider's connection error is not a database outage; a dropped database connection is", async () => {
    expect(isConnectionError(new ModelCallError("model call failed: Connection error.", true))).toBe(false);
    expect(isConnectionError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toBe(false);
    expect(isConnectionError(new Error("Connection terminated unexpectedly"))).toBe(false); // not from our pool
    // The real thing: the server ends our backend mid-session.
    const pool = createPool(f.url, { max: 1 });
    try {
      const c = await pool.connect();
      const { rows } = await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await f.pool.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
      const err = await c.query("SELECT 1").then(
        () => null,
        (e: unknown) => e,
      );
      c.release(true);
      expect(isConnectionError(err)).toBe(true);
      // A query error is not: a bad statement must fail its attempt, not be handed back for ever.
      const bad = await pool.query("SELECT * FROM no_such_table").then(
        () => null,
        (e: unknown) => e,
      );
      expect(isConnectionError(bad)).toBe(false);
      // Nothing listens here: the pool's connect error is marked with the driver code.
      const dead = createPool(refusedUrl.replace(/^http:/, "postgres:").replace(/\/v1$/, "/x"), { max: 1 });
      const refused = await dead.query("SELECT 1").then(
        () => null,
        (e: unknown) => e,
      );
      await dead.end();
      expect(isConnectionError(refused)).toBe(true);
    } finally {
      await pool.end();
    }
  });
});
