import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { notifyDeltas, STREAM_CHANNEL } from "../src/agent/stream.js";
import { createAgentStep } from "../src/agent/loop.js";
import { createModelResolver } from "../src/agent/models.js";
import { builtinTools, ToolRegistry } from "../src/tools/tools.js";
import { testLogger } from "./fixture.js";
import { waitFor } from "@keel/test/db";
import { useFixture } from "./fixture.js";

const f = useFixture();
let listener: pg.Client;
const got: { n: number; delta: { content: string } }[] = [];
// Both channels on one connection: notifications arrive here in commit order.
const order: string[] = [];
beforeAll(async () => {
  listener = new pg.Client({ connectionString: f.url });
  await listener.connect();
  listener.on("notification", (m) => {
    if (m.channel === STREAM_CHANNEL) got.push(JSON.parse(m.payload!));
    order.push(m.channel);
  });
  await listener.query(`LISTEN ${STREAM_CHANNEL}`);
  await listener.query("LISTEN keel_events");
});
afterAll(async () => {
  await listener?.end();
});

test("a run's deltas arrive in the order they were produced, numbered, even through a pool of many connections", async () => {
  const send = notifyDeltas(f.pool);
  const run = { id: "00000000-0000-4000-8000-000000000001", sessionId: "s", teamId: "t", epoch: 1n, attempt: 0, maxAttempts: 1, takeovers: 0, workerId: "w" };
  const text = "The quick brown fox jumps over the lazy dog, 0123456789 times.";
  for (const ch of text) send(run, { content: ch });
  await waitFor(() => got.length === text.length);
  expect(got.map((g) => g.delta.content).join("")).toBe(text);
  expect(got.map((g) => g.n)).toEqual(Array.from({ length: text.length }, (_, i) => i + 1));
});

test("a model call's deltas are all notified before its assistant item is stored (a late delta would bring back a draft)", async () => {
  const step = createAgentStep({
    pool: f.pool,
    tools: new ToolRegistry(builtinTools),
    logger: testLogger,
    models: createModelResolver({}),
    onDelta: notifyDeltas(f.pool),
  });
  await f.startWorker({ step });
  const sessionId = await f.newSession(); // the fixture's agent runs the demo model
  order.length = 0;
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hello there" });
  await waitFor(async () => (await f.client.getRun({ teamId: f.teamId, runId })).status === "succeeded", { what: "demo reply" });
  await waitFor(() => order.filter((c) => c === "keel_events").length >= 2, { what: "both events notified" });
  // keel_events: the user message, then the assistant item; every delta lies between them.
  const events = order.flatMap((c, i) => (c === "keel_events" ? [i] : []));
  const deltas = order.flatMap((c, i) => (c === STREAM_CHANNEL ? [i] : []));
  expect(deltas.length).toBeGreaterThan(5);
  expect(Math.max(...deltas)).toBeLessThan(events[1]!);
});
