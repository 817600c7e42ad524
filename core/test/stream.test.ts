import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { notifyDeltas, STREAM_CHANNEL } from "../src/agent/stream.js";
import { waitFor } from "../../test/db.js";
import { useFixture } from "./fixture.js";

const f = useFixture();
let listener: pg.Client;
const got: { n: number; delta: { content: string } }[] = [];
beforeAll(async () => {
  listener = new pg.Client({ connectionString: f.url });
  await listener.connect();
  listener.on("notification", (m) => got.push(JSON.parse(m.payload!)));
  await listener.query(`LISTEN ${STREAM_CHANNEL}`);
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
