// The agent loop against the demo model and a scripted OpenAI-compatible server on loopback.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readAllEvents } from "../src/engine/events.js";
import { markDriverError } from "../src/db/errors.js";
import { eventPayload, type SessionEvent } from "../src/engine/types.js";
import { createAgentStep, type LoopHooks } from "../src/agent/loop.js";
import { createModelResolver } from "../src/agent/models.js";
import { builtinTools, ToolRegistry, type Tool } from "../src/tools/tools.js";
import { decideToolCall, pendingApprovals } from "../src/engine/approvals.js";
import { Secrets } from "../src/secrets.js";
import { outboundPolicy } from "../src/agent/outbound.js";
import { randomBytes } from "node:crypto";
import type { AgentConfig } from "../src/tenancy.js";
import { waitFor } from "@keel/test/db";
import { testLogger, useFixture } from "./fixture.js";
import { assistantMessage, reasoningStream, startFakeOpenAI, textStream, toolCallStream, type FakeOpenAI } from "./support/fake-openai.js";

const f = useFixture();
let fake: FakeOpenAI;
const sideEffects: string[] = [];

const recordTool: Tool = {
  name: "record",
  description: "Records a value (not idempotent).",
  parameters: { type: "object", properties: { value: { type: "string" } }, required: ["value"], additionalProperties: false },
  idempotent: false,
  requiresApproval: false,
  timeoutMs: 2_000,
  run: async (args) => (sideEffects.push((args as { value: string }).value), { recorded: true }),
};
const bigTool: Tool = { ...recordTool, name: "big", parameters: { type: "object" }, idempotent: true, run: async () => "z".repeat(100_000) };
const deployTool: Tool = { ...recordTool, name: "deploy", requiresApproval: true, run: async () => (sideEffects.push("deployed"), "deployed") };
// "slow" runs until the test releases it (to act while a tool is in flight); "stuck" never
// finishes on its own and must be stopped by its timeout through the abort signal.
const gate = { started: false, release: () => {}, opened: Promise.resolve() };
function holdSlowTool(): typeof gate {
  gate.started = false;
  gate.opened = new Promise<void>((r) => (gate.release = r));
  return gate;
}
const slowTool: Tool = {
  ...recordTool,
  name: "slow",
  parameters: { type: "object" },
  idempotent: true,
  timeoutMs: 20_000,
  run: async () => ((gate.started = true), await gate.opened, "slow done"),
};
let stuckAbortedBy: unknown = null;
const stuckTool: Tool = {
  ...recordTool,
  name: "stuck",
  parameters: { type: "object" },
  timeoutMs: 200,
  run: (_args, ctx) =>
    new Promise((_, reject) => ctx.signal.addEventListener("abort", () => ((stuckAbortedBy = ctx.signal.reason), reject(ctx.signal.reason)), { once: true })),
};
// The fake provider listens on loopback, an internal address the workers refuse unless listed.
const loopback = outboundPolicy({ internal: ["127.0.0.1"] });
const registry = new ToolRegistry([...builtinTools, recordTool, bigTool, deployTool, slowTool, stuckTool]);

beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake?.close();
});

type AgentStep = ReturnType<typeof createAgentStep>;

/** A worker running the agent loop; `wrap` puts a test's own code around each step. */
async function startAgentWorker(opts: { hooks?: LoopHooks; maxModelCallsPerRun?: number; maxEventBytes?: number; wrap?: (step: AgentStep) => AgentStep } = {}) {
  const { wrap = (s: AgentStep) => s, ...loop } = opts;
  const step = createAgentStep({
    pool: f.pool,
    tools: registry,
    models: createModelResolver({ maxRetries: 2, timeoutMs: 3_000, outbound: loopback }),
    logger: testLogger,
    ...loop,
  });
  return f.startWorker({ step: wrap(step) });
}

/** The log of a run that asked for approval, got it and finished. */
const APPROVED_RUN = ["user_message", "assistant_message", "approval_requested", "approval_decided", "tool_result", "assistant_message"];

async function session(config: Partial<AgentConfig> & { provider?: AgentConfig["provider"] } = {}): Promise<string> {
  const agent = await f.tenancy.createAgent(f.teamId, {
    name: `a-${Math.random().toString(36).slice(2, 8)}`,
    model: "gpt-test",
    provider: { kind: "openai-compatible", baseUrl: fake.url, maxRetries: 2, timeoutMs: 3_000 },
    tools: ["calculator", "get_time", "record", "big", "deploy", "slow", "stuck"],
    ...config,
  });
  return (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;
}

async function settle(runId: string, status = "succeeded"): Promise<void> {
  await waitFor(
    async () => {
      const s = (await f.client.getRun({ teamId: f.teamId, runId })).status;
      if (["failed", "succeeded", "cancelled"].includes(s) && s !== status) throw new Error(`run ended ${s}, expected ${status}`);
      return s === status;
    },
    { timeoutMs: 20_000, what: `run ${status}` },
  );
}

/** "hi" to a new session of an agent with this provider: the requests that reached `server`, and the log. */
async function askOnce(provider: AgentConfig["provider"], server: FakeOpenAI, status = "succeeded") {
  const sessionId = await session({ provider });
  server.enqueue({ kind: "stream", chunks: textStream("ok") });
  const before = server.requests.length;
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
  await settle(runId, status);
  return { requests: server.requests.slice(before), events: await readAllEvents(f.pool, sessionId) };
}

const types = (events: SessionEvent[]) => events.map((e) => e.type);
const toolResults = (events: SessionEvent[]) =>
  events.filter((e) => e.type === "tool_result").map((e) => eventPayload<{ tool_call_id: string; content: string; isError: boolean; state: string }>(e));

describe("demo model", () => {
  test("answers offline through the same streaming and tool path, and says it is a demo", async () => {
    await startAgentWorker();
    const sessionId = await session({ model: "demo", provider: {}, tools: ["calculator"] });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "please calculate 6*7" });
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "assistant_message", "tool_result", "assistant_message"]);
    expect(toolResults(events)[0]).toMatchObject({ content: '{"result":42}', isError: false, state: "succeeded" });
    const final = eventPayload<{ message: { content: string; reasoning_content: string } }>(events[3]!).message;
    expect(final.content).toMatch(/demo model/);
    expect(final.reasoning_content).toMatch(/^Demo reasoning/);
  });
});

describe("OpenAI-compatible provider", () => {
  test("parallel tool calls with arguments split across chunks; usage per run and per team", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      {
        kind: "stream",
        chunks: toolCallStream(
          [
            { id: "c1", name: "calculator", args: '{"expression":"2+3"}' },
            { id: "c2", name: "calculator", args: '{"expression":"10/4"}' },
          ],
          { splitArgsInto: 4, interleave: true, usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } },
        ),
      },
      { kind: "stream", chunks: textStream("5 and 2.5", { usage: { prompt_tokens: 20, completion_tokens: 3, total_tokens: 23 } }) },
    );
    const before = fake.requests.length;
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "compute both" });
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "assistant_message", "tool_result", "tool_result", "assistant_message"]);
    expect(toolResults(events).map((r) => [r.tool_call_id, r.content])).toEqual([
      ["c1", '{"result":5}'],
      ["c2", '{"result":2.5}'],
    ]);
    const second = fake.requests[before + 1]!.json as { messages: { role: string; tool_call_id?: string }[]; stream_options: unknown };
    expect(second.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "tool"]);
    expect(second.stream_options).toEqual({ include_usage: true });
    const run = await f.pool.query("SELECT prompt_tokens, completion_tokens FROM runs WHERE id = $1", [runId]);
    expect(run.rows[0]).toEqual({ prompt_tokens: 31, completion_tokens: 10 });
    const team = await f.pool.query("SELECT sum(prompt_tokens)::int AS p FROM runs WHERE team_id = $1", [f.teamId]);
    expect(team.rows[0].p).toBeGreaterThanOrEqual(31);
  });

  test("reasoning and signed thinking blocks are stored verbatim and sent back byte-identical, also after a resume on another worker", async () => {
    const spec = {
      thinkingBlocks: [
        { type: "thinking" as const, thinking: 'Let me think: the user wants "x" — ünïcödé 🚀 and\nnewlines.', signature: "EqQBCkgIARABGAIiQPm+sig/with==" },
        { type: "redacted_thinking" as const, data: "RW5jcnlwdGVkIHJlYXNvbmluZw==" },
      ],
      toolCalls: [{ id: "r1", name: "get_time", args: "{}" }],
    };
    const expected = JSON.stringify(assistantMessage(spec));
    // Worker A stops right after storing the model's reply (as if its database connection died: the
    // error our pool raises then, marked by the driver layer);
    // worker B continues the run from the log.
    let aStopped = false;
    const a = await startAgentWorker({
      hooks: {
        afterModel: () => {
          if (!aStopped) {
            aStopped = true;
            throw markDriverError(new Error("Connection terminated unexpectedly"));
          }
        },
      },
    });
    const sessionId = await session();
    fake.enqueue({ kind: "stream", chunks: reasoningStream(spec) }, { kind: "stream", chunks: textStream("It is late.") });
    const before = fake.requests.length;
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "what time is it, really?" });
    await waitFor(() => aStopped);
    await a.stop();
    await startAgentWorker();
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    const stored = events.find((e) => e.type === "assistant_message")!;
    expect(JSON.stringify(eventPayload<{ message: unknown }>(stored).message)).toBe(expected);
    const resumed = fake.requests[before + 1]!;
    expect(resumed.rawBody).toContain(expected); // the whole assistant item, byte for byte, in the next request
    const run = await f.client.getRun({ teamId: f.teamId, runId });
    expect(run.attempt).toBe(0); // handing back is not a failed attempt
  });

  test("encrypted reasoning items (reasoning_details) are stored as received and sent back byte-identical", async () => {
    await startAgentWorker();
    const sessionId = await session();
    const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null) => ({
      id: "chatcmpl-rd",
      object: "chat.completion.chunk" as const,
      created: 1,
      model: "gpt-test",
      choices: [{ index: 0, delta, logprobs: null, finish_reason }],
    });
    const details = [
      { type: "reasoning.text", text: "Weigh ", format: "anthropic-claude-v1", index: 0 },
      { type: "reasoning.text", text: "the clock.", signature: "c2lnbmF0dXJl/+==", format: "anthropic-claude-v1", index: 0 },
      { type: "reasoning.encrypted", id: "rs_01", data: "gAAAAABo\u00e9ncrypted+/==", format: "openai-responses-v1", index: 1 },
    ];
    fake.enqueue(
      {
        kind: "stream",
        chunks: [
          chunk({ role: "assistant", content: null }),
          chunk({ reasoning: "Weigh ", reasoning_details: [details[0]] }),
          chunk({ reasoning: "the clock.", reasoning_details: [details[1]] }),
          chunk({ reasoning_details: [details[2]] }),
          chunk({ tool_calls: [{ index: 0, id: "e1", type: "function", function: { name: "get_time", arguments: "{}" } }] }),
          chunk({}, "tool_calls"),
        ] as never,
      },
      { kind: "stream", chunks: textStream("It is now.") },
    );
    const before = fake.requests.length;
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "what time is it?" });
    await settle(runId);
    const stored = eventPayload<{ message: Record<string, unknown> }>(
      (await readAllEvents(f.pool, sessionId)).find((e) => e.type === "assistant_message")!,
    ).message;
    expect(stored).toEqual({
      role: "assistant",
      content: null,
      reasoning: "Weigh the clock.",
      reasoning_details: details,
      tool_calls: [{ id: "e1", type: "function", function: { name: "get_time", arguments: "{}" } }],
    });
    expect(fake.requests[before + 1]!.rawBody).toContain(JSON.stringify(stored));
  });

  test("429 and 500 are retried with backoff; a stream cut mid-way is retried as a new attempt", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      { kind: "error", status: 429, headers: { "retry-after-ms": "20" }, body: { error: { message: "slow down" } } },
      { kind: "error", status: 500, headers: { "retry-after-ms": "20" } },
      { kind: "stream", chunks: textStream("partial answer that never finishes", { chunkSize: 3 }), dropAfter: 4 },
      { kind: "stream", chunks: textStream("whole answer") },
    );
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "model_error", "run_retrying", "assistant_message"]);
    expect(eventPayload<{ code: string; retryable: boolean }>(events[1]!)).toMatchObject({ code: "model_unavailable", retryable: true });
    expect(eventPayload<{ message: { content: string } }>(events[3]!).message.content).toBe("whole answer");
  });

  test("a stream that ends cleanly before its finish_reason is not stored as a final item; it is asked again", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "h1", name: "record", args: '{"value":"half"}' }], { splitArgsInto: 4 }), endAfter: 3 },
      { kind: "stream", chunks: textStream("the whole reply") },
    );
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "model_error", "run_retrying", "assistant_message"]);
    expect(eventPayload<{ message: string; retryable: boolean }>(events[1]!)).toMatchObject({
      retryable: true,
      message: expect.stringMatching(/ended before the reply was finished/),
    });
    expect(sideEffects).not.toContain("half");
  });

  test("a non-retryable provider error fails the run visibly with the reason", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue({ kind: "error", status: 401, body: { error: { message: "invalid api key" } } });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId, "failed");
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "model_error", "run_failed"]);
    expect(eventPayload<{ message: string }>(events[2]!).message).toMatch(/401.*invalid api key/);
  });
});

describe("API keys", () => {
  test("the workers' key goes only to the workers' provider; an agent's own base URL gets the team secret it names, or no key", async () => {
    const own = await startFakeOpenAI();
    try {
      const secrets = new Secrets({ pool: f.pool, keyBase64: randomBytes(32).toString("base64") });
      await secrets.put({ teamId: f.teamId, role: "admin", actor: "test", userId: null, apiKeyId: null }, "TEAM_LLM_KEY", "sk-team-key");
      const step = createAgentStep({
        pool: f.pool,
        tools: registry,
        logger: testLogger,
        models: createModelResolver({ openaiBaseUrl: fake.url, openaiApiKey: "sk-operator-key", maxRetries: 0, secrets, outbound: loopback }),
      });
      await f.startWorker({ step });
      const ask = async (provider: AgentConfig["provider"], server: FakeOpenAI, status = "succeeded") => {
        const r = await askOnce(provider, server, status);
        return { auth: r.requests[0]?.headers.authorization, events: r.events };
      };
      expect((await ask({ kind: "openai-compatible" }, fake)).auth).toBe("Bearer sk-operator-key");
      expect((await ask({ baseUrl: fake.url }, fake)).auth).toBe("Bearer sk-operator-key"); // the same provider, named explicitly
      expect((await ask({ baseUrl: own.url }, own)).auth).not.toContain("sk-operator-key");
      expect((await ask({ baseUrl: own.url, apiKeySecret: "TEAM_LLM_KEY" }, own)).auth).toBe("Bearer sk-team-key");
      const unset = await ask({ baseUrl: own.url, apiKeySecret: "NOT_SET_YET" }, own, "failed");
      expect(unset.auth).toBeUndefined(); // refused before any request
      expect(eventPayload<{ code: string; message: string }>(unset.events.at(-1)!)).toMatchObject({
        code: "model_not_configured",
        message: expect.stringMatching(/NOT_SET_YET, which this team has not set/),
      });
    } finally {
      await own.close();
    }
  });

  test("KEEL_OUTBOUND_HOSTS: an agent's own base URL on a host not listed fails at once, nothing sent; the workers' provider and listed hosts work", async () => {
    const own = await startFakeOpenAI();
    const listed = await startFakeOpenAI();
    try {
      const outbound = outboundPolicy({ allow: ["api.openai.com", `127.0.0.1:${new URL(listed.url).port}`], trusted: [fake.url] });
      const step = createAgentStep({
        pool: f.pool,
        tools: registry,
        logger: testLogger,
        models: createModelResolver({ openaiBaseUrl: fake.url, maxRetries: 0, outbound }),
      });
      await f.startWorker({ step });
      const run = async (provider: AgentConfig["provider"], server: FakeOpenAI, status = "succeeded") => {
        const r = await askOnce(provider, server, status);
        return { sent: r.requests.length, last: r.events.at(-1)! };
      };
      expect((await run({ kind: "openai-compatible" }, fake)).sent).toBe(1);
      expect((await run({ baseUrl: listed.url }, listed)).sent).toBe(1);
      const refused = await run({ baseUrl: own.url }, own, "failed");
      expect(refused.sent).toBe(0);
      expect(eventPayload<{ code: string; message: string }>(refused.last)).toMatchObject({
        code: "outbound_not_allowed",
        message: expect.stringMatching(new RegExp(`127\\.0\\.0\\.1:${new URL(own.url).port} is not among the hosts .*KEEL_OUTBOUND_HOSTS`)),
      });
    } finally {
      await Promise.all([own.close(), listed.close()]);
    }
  });

  test("an agent naming a key secret on a worker without KEEL_SECRETS_KEY fails at once, saying so", async () => {
    const step = createAgentStep({
      pool: f.pool,
      tools: registry,
      logger: testLogger,
      models: createModelResolver({ secrets: new Secrets({ pool: f.pool }), outbound: loopback }),
    });
    await f.startWorker({ step });
    const sessionId = await session({ provider: { baseUrl: fake.url, apiKeySecret: "TEAM_LLM_KEY" } });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId, "failed");
    expect((await f.client.getRun({ teamId: f.teamId, runId })).attempt).toBe(0);
    expect(eventPayload<{ code: string; message: string }>((await readAllEvents(f.pool, sessionId)).at(-1)!)).toMatchObject({
      code: "model_not_configured",
      message: expect.stringMatching(/KEEL_SECRETS_KEY/),
    });
  });
});

describe("configuration errors", () => {
  test("an agent whose provider is not configured fails at once with what to set", async () => {
    await startAgentWorker();
    const sessionId = await session({ provider: {} });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId, "failed");
    const run = await f.client.getRun({ teamId: f.teamId, runId });
    expect(run.attempt).toBe(0);
    const last = (await readAllEvents(f.pool, sessionId)).at(-1)!;
    expect(eventPayload<{ code: string; message: string }>(last)).toMatchObject({
      code: "model_not_configured",
      message: expect.stringMatching(/KEEL_OPENAI_BASE_URL/),
    });
  });
});

describe("bad model output", () => {
  test("invalid JSON arguments, unknown tools and schema violations become model-readable tool errors", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      {
        kind: "stream",
        chunks: toolCallStream([
          { id: "b1", name: "calculator", args: '{"expression": "1+' },
          { id: "b2", name: "rm_rf", args: "{}" },
          { id: "b3", name: "calculator", args: '{"expr":"1"}' },
        ]),
      },
      { kind: "stream", chunks: textStream("sorry") },
    );
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "go" });
    await settle(runId);
    const results = toolResults(await readAllEvents(f.pool, sessionId));
    expect(results.map((r) => r.isError)).toEqual([true, true, true]);
    expect(results[0]!.content).toMatch(/not valid JSON/);
    expect(results[1]!.content).toMatch(/unknown tool "rm_rf".*Available tools: calculator/);
    expect(results[2]!.content).toMatch(/invalid arguments for calculator/);
  });

  test("an empty response is a visible error and is retried", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue({ kind: "stream", chunks: textStream("") }, { kind: "stream", chunks: textStream("now with words") });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "model_error", "run_retrying", "assistant_message"]);
    expect(eventPayload<{ code: string }>(events[1]!).code).toBe("empty_response");
  });

  test("an endless tool loop stops at the step limit with a visible failure", async () => {
    await startAgentWorker({ maxModelCallsPerRun: 3 });
    const sessionId = await session();
    fake.handler = (req) =>
      req.json?.messages?.[0]?.content === "loop forever"
        ? { kind: "stream", chunks: toolCallStream([{ id: `l${req.json.messages.length}`, name: "get_time", args: "{}" }]) }
        : undefined;
    try {
      const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "loop forever" });
      await settle(runId, "failed");
    } finally {
      fake.handler = undefined;
    }
    const events = await readAllEvents(f.pool, sessionId);
    expect(events.filter((e) => e.type === "assistant_message")).toHaveLength(3);
    expect(events.at(-2)!.type).toBe("model_error");
    expect(eventPayload<{ code: string; message: string }>(events.at(-1)!)).toMatchObject({ code: "step_limit", message: expect.stringMatching(/limit 3/) });
  });

  test("a model reply larger than the event limit fails the run visibly", async () => {
    await startAgentWorker({ maxEventBytes: 4_000 });
    const sessionId = await session();
    fake.enqueue({ kind: "stream", chunks: textStream("w".repeat(10_000), { chunkSize: 500 }) });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "write a novel" });
    await settle(runId, "failed");
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "model_error", "run_failed"]);
    expect(eventPayload<{ code: string }>(events[2]!).code).toBe("output_too_large");
  });

  test("a provider that hangs times out, is reported, and the next attempt succeeds", async () => {
    await startAgentWorker();
    const sessionId = await session({ provider: { kind: "openai-compatible", baseUrl: fake.url, maxRetries: 0, timeoutMs: 300 } });
    fake.enqueue({ kind: "hang" }, { kind: "stream", chunks: textStream("awake now") });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
    await settle(runId);
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "model_error", "run_retrying", "assistant_message"]);
    expect(eventPayload<{ message: string; retryable: boolean }>(events[1]!)).toMatchObject({
      retryable: true,
      message: expect.stringMatching(/timed out|timeout/i),
    });
  });

  test("oversized tool output is capped with a note to the model", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue({ kind: "stream", chunks: toolCallStream([{ id: "g1", name: "big", args: "{}" }]) }, { kind: "stream", chunks: textStream("ok") });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "big" });
    await settle(runId);
    const [r] = toolResults(await readAllEvents(f.pool, sessionId));
    expect(Buffer.byteLength(r!.content)).toBeLessThan(66 * 1024);
    expect(r!.content).toMatch(/\[output truncated: 100000 bytes in all, the first 65536 shown\]$/);
  });
});

describe("tools in flight", () => {
  test("a tool past its timeout is aborted and becomes a model-readable error", async () => {
    await startAgentWorker();
    const sessionId = await session();
    stuckAbortedBy = null;
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "st1", name: "stuck", args: "{}" }]) },
      { kind: "stream", chunks: textStream("it timed out") },
    );
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "try the stuck tool" });
    await settle(runId);
    expect(toolResults(await readAllEvents(f.pool, sessionId))).toEqual([
      { tool_call_id: "st1", name: "stuck", isError: true, state: "failed", content: "Error: the tool did not finish within 200 ms" },
    ]);
    expect(String(stuckAbortedBy)).toMatch(/did not finish within 200 ms/); // the tool was told to stop, not abandoned
  });

  test("onBusy=interrupt while a tool runs: its result is stored, no model call follows in that run; the next run answers the rest 'not run'", async () => {
    await startAgentWorker();
    const sessionId = await session();
    const slow = holdSlowTool();
    fake.enqueue(
      {
        kind: "stream",
        chunks: toolCallStream([
          { id: "s1", name: "slow", args: "{}" },
          { id: "s2", name: "record", args: '{"value":"never-run"}' },
        ]),
      },
      { kind: "stream", chunks: textStream("switching to your new request") },
    );
    const before = fake.requests.length;
    const first = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "do the slow thing, then record" });
    await waitFor(() => slow.started, { what: "slow tool started" });
    const second = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "stop, do this instead", onBusy: "interrupt" });
    expect(second.disposition).toBe("interrupting");
    slow.release();
    await settle(second.runId);
    expect((await f.client.getRun({ teamId: f.teamId, runId: first.runId })).status).toBe("interrupted");
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "assistant_message", "user_message", "tool_result", "run_interrupted", "tool_result", "assistant_message"]);
    expect(toolResults(events)).toMatchObject([
      { tool_call_id: "s1", state: "succeeded", isError: false, content: "slow done" },
      { tool_call_id: "s2", state: "failed", isError: true, content: expect.stringMatching(/Not run: the user sent a new message/) },
    ]);
    expect(events[3]!.runId).toBe(first.runId); // the in-flight result belongs to the interrupted run
    expect(events.at(-1)!.runId).toBe(second.runId);
    expect(sideEffects).not.toContain("never-run");
    expect(fake.requests.length - before).toBe(2); // the interrupted run made no model call after its tool
    const last = fake.requests.at(-1)!.json as { messages: { role: string; content?: unknown }[] };
    expect(last.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "tool", "user"]);
    expect(last.messages.at(-1)!.content).toBe("stop, do this instead");
  });

  test("cancel while a tool runs: the result is stored, the run ends cancelled before the next model call", async () => {
    await startAgentWorker();
    const sessionId = await session();
    const slow = holdSlowTool();
    fake.enqueue({ kind: "stream", chunks: toolCallStream([{ id: "k1", name: "slow", args: "{}" }]) });
    const before = fake.requests.length;
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "slow, please" });
    await waitFor(() => slow.started, { what: "slow tool started" });
    expect(await f.client.cancel({ teamId: f.teamId, sessionId })).toEqual({ cancelled: [], stopping: [runId] });
    slow.release();
    await settle(runId, "cancelled");
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual(["user_message", "assistant_message", "tool_result", "run_cancelled"]);
    expect(toolResults(events)[0]).toMatchObject({ tool_call_id: "k1", state: "succeeded", content: "slow done" });
    expect(fake.requests.length - before).toBe(1);
  });
});

describe("approvals", () => {
  test("a tool that requires approval parks the run; approve runs it, deny tells the model", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "d1", name: "deploy", args: '{"value":"prod"}' }]) },
      { kind: "stream", chunks: textStream("deployed it") },
    );
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy" });
    await settle(runId, "waiting_approval");
    expect(sideEffects).not.toContain("deployed");
    expect(types(await readAllEvents(f.pool, sessionId))).toEqual(["user_message", "assistant_message", "approval_requested"]);
    await decideToolCall(f.pool, { teamId: f.teamId, sessionId, callId: "d1", approve: true, decidedBy: "ops@acme" });
    await expect(decideToolCall(f.pool, { teamId: f.teamId, sessionId, callId: "d1", approve: false })).rejects.toMatchObject({ status: 409 });
    await settle(runId);
    expect(sideEffects.filter((s) => s === "deployed")).toHaveLength(1);

    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "d2", name: "deploy", args: '{"value":"prod"}' }]) },
      { kind: "stream", chunks: textStream("ok, not deploying") },
    );
    const second = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy again" });
    await settle(second.runId, "waiting_approval");
    await decideToolCall(f.pool, { teamId: f.teamId, sessionId, callId: "d2", approve: false, reason: "freeze week" });
    await settle(second.runId);
    expect(sideEffects.filter((s) => s === "deployed")).toHaveLength(1);
    expect(toolResults(await readAllEvents(f.pool, sessionId)).at(-1)).toMatchObject({
      tool_call_id: "d2",
      isError: true,
      content: expect.stringMatching(/denied.*freeze week/),
    });
  });

  test("the approvals inbox: the team's waiting calls across sessions, oldest first, with session, agent and arguments; decided calls leave it; another team sees none", async () => {
    await startAgentWorker();
    const first = await session();
    const second = await session();
    const inbox = () => pendingApprovals(f.pool, f.teamId);
    const before = (await inbox()).total;
    fake.enqueue({ kind: "stream", chunks: toolCallStream([{ id: "in1", name: "deploy", args: '{"value":"staging"}' }]) });
    const r1 = await f.client.postMessage({ teamId: f.teamId, sessionId: first, content: "deploy staging" });
    await settle(r1.runId, "waiting_approval");
    fake.enqueue({ kind: "stream", chunks: toolCallStream([{ id: "in2", name: "deploy", args: `{"value":"${"p".repeat(3_000)}"}` }]) });
    const r2 = await f.client.postMessage({ teamId: f.teamId, sessionId: second, content: "deploy prod" });
    await settle(r2.runId, "waiting_approval");

    const mine = (await inbox()).approvals.filter((a) => a.sessionId === first || a.sessionId === second);
    expect(mine.map((a) => [a.sessionId, a.callId, a.runId, a.tool])).toEqual([
      [first, "in1", r1.runId, "deploy"],
      [second, "in2", r2.runId, "deploy"],
    ]);
    expect(mine[0]).toMatchObject({ arguments: '{"value":"staging"}', argumentsTruncated: false, agentName: expect.stringMatching(/^a-/) });
    expect(mine[1]!.arguments).toHaveLength(2_000);
    expect(mine[1]!.argumentsTruncated).toBe(true);
    expect(mine[0]!.requestedAt.getTime()).toBeLessThanOrEqual(mine[1]!.requestedAt.getTime());
    expect((await inbox()).total).toBe(before + 2);
    expect((await pendingApprovals(f.pool, f.teamId, 1)).approvals).toHaveLength(1);
    await expect(pendingApprovals(f.pool, f.teamId, 0)).rejects.toMatchObject({ status: 422 });
    const other = await f.tenancy.createTeam({ slug: `other-${Math.random().toString(36).slice(2, 8)}`, name: "Other" });
    expect(await pendingApprovals(f.pool, other.id)).toEqual({ approvals: [], total: 0 });

    fake.enqueue({ kind: "stream", chunks: textStream("not deploying") });
    await decideToolCall(f.pool, { teamId: f.teamId, sessionId: first, callId: "in1", approve: false });
    expect((await inbox()).approvals.map((a) => a.callId)).not.toContain("in1");
    await settle(r1.runId);
    fake.enqueue({ kind: "stream", chunks: textStream("not deploying either") });
    await decideToolCall(f.pool, { teamId: f.teamId, sessionId: second, callId: "in2", approve: false });
    await settle(r2.runId);
    expect((await inbox()).total).toBe(before);
  });

  test("the decision resumes the run on another worker: the one that parked it is gone", async () => {
    const a = await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "w1", name: "deploy", args: '{"value":"staging"}' }]) },
      { kind: "stream", chunks: textStream("deployed to staging") },
    );
    const deployed = () => sideEffects.filter((s) => s === "deployed").length;
    const before = deployed();
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy staging" });
    await settle(runId, "waiting_approval");
    await a.stop();
    await decideToolCall(f.pool, { teamId: f.teamId, sessionId, callId: "w1", approve: true, decidedBy: "ops@acme" });
    expect((await f.client.getRun({ teamId: f.teamId, runId })).status).toBe("queued"); // back in the queue, for any worker
    await startAgentWorker(); // a new worker; the first one is stopped
    await settle(runId);
    expect(deployed()).toBe(before + 1);
    expect(types(await readAllEvents(f.pool, sessionId))).toEqual(APPROVED_RUN);
  });

  test("a decision that arrives between the question and the park is kept: the run continues instead of waiting forever", async () => {
    // The UIs show the question as soon as its event is stored; the worker parks the run in a
    // statement after that. A click in between was refused 409 not_waiting, and the run then
    // waited for a decision already given (seen in the dashboard test under load).
    const decisions: { callId: string; approve: boolean }[] = [];
    await startAgentWorker({
      wrap: (inner) => async (ctx) => {
        const out = await inner(ctx);
        const d = out === "waiting_approval" ? decisions.shift() : undefined;
        if (d) await decideToolCall(f.pool, { teamId: f.teamId, sessionId: ctx.run.sessionId, ...d, decidedBy: "quick@acme" });
        return out;
      },
    });
    const sessionId = await session();
    const deployed = () => sideEffects.filter((s) => s === "deployed").length;
    const before = deployed();
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "q1", name: "deploy", args: '{"value":"prod"}' }]) },
      { kind: "stream", chunks: textStream("deployed quickly") },
    );
    decisions.push({ callId: "q1", approve: true });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy" });
    await settle(runId);
    expect(deployed()).toBe(before + 1);
    expect(types(await readAllEvents(f.pool, sessionId))).toEqual(APPROVED_RUN);

    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "q2", name: "deploy", args: '{"value":"prod"}' }]) },
      { kind: "stream", chunks: textStream("not deploying") },
    );
    decisions.push({ callId: "q2", approve: false });
    const second = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy again" });
    await settle(second.runId);
    expect(deployed()).toBe(before + 1);
    expect(toolResults(await readAllEvents(f.pool, sessionId)).at(-1)).toMatchObject({
      tool_call_id: "q2",
      isError: true,
      content: expect.stringMatching(/denied/),
    });
  });

  test("a new message with onBusy=interrupt ends a run waiting for approval; the undecided call is answered 'not run'", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "i1", name: "deploy", args: '{"value":"prod"}' }]) },
      { kind: "stream", chunks: textStream("ok, doing the other thing") },
    );
    const first = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy" });
    await settle(first.runId, "waiting_approval");
    const second = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "no wait, do something else", onBusy: "interrupt" });
    expect(second.disposition).toBe("interrupting");
    await settle(second.runId);
    expect((await f.client.getRun({ teamId: f.teamId, runId: first.runId })).status).toBe("interrupted");
    const events = await readAllEvents(f.pool, sessionId);
    expect(types(events)).toEqual([
      "user_message",
      "assistant_message",
      "approval_requested",
      "user_message",
      "run_interrupted",
      "tool_result",
      "assistant_message",
    ]);
    expect(toolResults(events)[0]).toMatchObject({ tool_call_id: "i1", isError: true, content: expect.stringMatching(/Not run: the user sent a new message/) });
    const last = fake.requests.at(-1)!.json as { messages: { role: string }[] };
    expect(last.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "user"]);
  });

  test("cancel ends a run waiting for approval at once, and the tool never runs", async () => {
    await startAgentWorker();
    const sessionId = await session();
    fake.enqueue({ kind: "stream", chunks: toolCallStream([{ id: "x1", name: "deploy", args: '{"value":"prod"}' }]) });
    const before = sideEffects.length;
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy" });
    await settle(runId, "waiting_approval");
    expect(await f.client.cancel({ teamId: f.teamId, sessionId })).toEqual({ cancelled: [runId], stopping: [] });
    await expect(decideToolCall(f.pool, { teamId: f.teamId, sessionId, callId: "x1", approve: true })).rejects.toMatchObject({ code: "not_waiting" });
    expect(sideEffects.length).toBe(before);
  });
});
