// Resume from every step boundary with real processes: a worker running the agent loop SIGKILLs
// itself before/after the model call, before/after a tool call and in the middle of a
// non-idempotent tool; a second worker finishes the run. The log must look like a run without
// crashes (an interrupted non-idempotent call is reported as indeterminate instead of run
// twice), and the tool's side effect happens at most once.
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { readAllEvents } from "../src/engine/events.js";
import { eventPayload } from "../src/engine/types.js";
import { waitFor } from "@keel/test/db";
import { useFixture } from "./fixture.js";
import { killLeftoverWorkers, spawnWorkerProcess } from "./processes.js";
import { assistantMessage, reasoningStream, startFakeOpenAI, textStream, type FakeOpenAI } from "./support/fake-openai.js";

const f = useFixture();
let fake: FakeOpenAI;
// The first reply reasons (signed thinking blocks) and calls two tools; every later request of the
// run must carry that item byte for byte, whichever worker sends it.
const CALLING = {
  thinkingBlocks: [
    { type: "thinking" as const, thinking: "Record first — then the lookup. ünï 🚀\n", signature: "EqQBCkgIARAB/sig+==" },
    { type: "redacted_thinking" as const, data: "ZW5jcnlwdGVkIHJlYXNvbmluZw==" },
  ],
  toolCalls: [
    { id: "t1", name: "record", args: '{"value":"x"}' },
    { id: "t2", name: "lookup", args: "{}" },
  ],
};
const CALLING_JSON = JSON.stringify(assistantMessage(CALLING));

beforeAll(async () => {
  await f.pool.query("CREATE TABLE kill_marks (point text PRIMARY KEY)");
  await f.pool.query("CREATE TABLE side_effects (key text PRIMARY KEY, n int NOT NULL)");
  fake = await startFakeOpenAI();
  // Deterministic by conversation state, so a repeated request gets the same answer.
  fake.handler = (req) => {
    const last = req.json?.messages?.at(-1);
    if (last?.role === "user") return { kind: "stream", chunks: reasoningStream(CALLING) };
    return { kind: "stream", chunks: textStream("all done") };
  };
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  expect(killLeftoverWorkers()).toBe(0);
});

async function runOnce(killAt: string) {
  const agent = await f.tenancy.createAgent(f.teamId, {
    name: `r-${killAt || "none"}`,
    model: "m",
    provider: { kind: "openai-compatible", baseUrl: fake.url },
    tools: ["record", "lookup"],
  });
  const sessionId = (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;
  const env = { CRASH_DB_URL: f.url };
  const before = fake.requests.length;
  const first = await spawnWorkerProcess({ ...env, KEEL_KILL_AT: killAt }, "agent-worker");
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "record x and tell me the time" });
  if (killAt) {
    const exit = await first.exited;
    expect(exit.signal).toBe("SIGKILL");
  }
  const second = killAt ? await spawnWorkerProcess(env, "agent-worker") : first;
  await waitFor(async () => (await f.client.getRun({ teamId: f.teamId, runId })).status === "succeeded", {
    timeoutMs: 30_000,
    what: `run after kill at ${killAt}`,
  });
  second.child.kill("SIGTERM");
  expect((await second.exited).code).toBe(0);
  const events = await readAllEvents(f.pool, sessionId);
  const { rows } = await f.pool.query("SELECT n FROM side_effects WHERE key = $1", [sessionId]);
  const lookups = (await f.pool.query("SELECT n FROM side_effects WHERE key = $1", [`${sessionId}:lookup`])).rows[0]?.n ?? 0;
  const requests = fake.requests.slice(before).filter((r) => r.json?.messages?.[0]?.content === "record x and tell me the time");
  return { events, sideEffects: rows[0]?.n ?? 0, lookups, requests, run: await f.client.getRun({ teamId: f.teamId, runId }) };
}

const shape = (events: { type: string; payloadText: string }[]) =>
  events.map((e) =>
    e.type === "tool_result"
      ? `tool_result:${eventPayload<{ tool_call_id: string; state: string }>(e as never).tool_call_id}:${eventPayload<{ state: string }>(e as never).state}`
      : e.type,
  );

test.each(["(no kill)", "beforeModel", "afterModel", "beforeTool", "afterTool", "midTool", "midIdempotentTool"])(
  "killed at %s: the run finishes with the log of an uninterrupted run",
  async (killAt) => {
    const { events, sideEffects, lookups, requests, run } = await runOnce(killAt === "(no kill)" ? "" : killAt);
    const expected = [
      "user_message",
      "assistant_message",
      `tool_result:t1:${killAt === "midTool" ? "indeterminate" : "succeeded"}`,
      "tool_result:t2:succeeded",
      "assistant_message",
    ];
    expect(shape(events)).toEqual(expected);
    expect(events.map((e) => Number(e.seq))).toEqual([1, 2, 3, 4, 5]);
    expect(sideEffects).toBe(1); // the non-idempotent tool's effect happened exactly once (at most once is the promise)
    expect(lookups).toBe(killAt === "midIdempotentTool" ? 2 : 1); // an idempotent call cut short is simply run again
    expect(run.takeovers).toBe(killAt === "(no kill)" ? 0 : 1);
    // Reasoning kept verbatim: stored as received, and sent back byte-identical after the kill.
    expect(JSON.stringify(eventPayload<{ message: unknown }>(events[1]!).message)).toBe(CALLING_JSON);
    const later = requests.filter((r) => r.json.messages.length > 1);
    expect(later.length).toBeGreaterThanOrEqual(1);
    for (const r of later) expect(r.rawBody).toContain(CALLING_JSON);
    if (killAt === "midTool") {
      const r = eventPayload<{ content: string }>(events[2]!);
      expect(r.content).toMatch(/may or may not have taken effect/);
    }
  },
  60_000,
);
