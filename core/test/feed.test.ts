// EventFeed: live subscriptions deliver every later event once, in order, also across a lost
// LISTEN connection (the fallback read finds what NOTIFY missed).
import { afterAll, beforeAll, expect, test } from "vitest";
import { appendEvent } from "../src/engine/events.js";
import { syntheticEncoded } from "./steps.js";
import { EventFeed } from "../src/engine/feed.js";
import type { SessionEvent } from "../src/engine/types.js";
import { waitFor } from "@keel/test/db";
import { testLogger, useFixture } from "./fixture.js";

const f = useFixture();
let feed: EventFeed;
beforeAll(async () => {
  feed = new EventFeed({ pool: f.pool, connectionString: f.url, logger: testLogger, pollMs: 200 });
  await feed.start();
});
afterAll(async () => {
  await feed?.stop();
});

const append = (sessionId: string, i: number) => appendEvent(f.pool, { sessionId, ...syntheticEncoded("note", JSON.stringify({ i })) });

test("delivers events after the given seq, then live ones, each once and in order", async () => {
  const sessionId = await f.newSession();
  for (let i = 1; i <= 3; i++) await append(sessionId, i);
  const got: SessionEvent[] = [];
  const unsubscribe = feed.subscribe(sessionId, 1n, (events) => got.push(...events));
  await Promise.all(Array.from({ length: 20 }, (_, i) => append(sessionId, 100 + i)));
  await waitFor(() => got.length === 22);
  expect(got.map((e) => Number(e.seq))).toEqual(Array.from({ length: 22 }, (_, i) => i + 2));
  unsubscribe();
  await append(sessionId, 999);
  await new Promise((r) => setTimeout(r, 300)); // longer than the fallback poll: nothing more may arrive
  expect(got.length).toBe(22);
});

test("events appended while the LISTEN connection is down still arrive, once", async () => {
  const sessionId = await f.newSession();
  const got: bigint[] = [];
  feed.subscribe(sessionId, 0n, (events) => got.push(...events.map((e) => e.seq)));
  await append(sessionId, 1);
  await waitFor(() => got.length === 1);
  await f.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keel-feed' AND datname = current_database()");
  for (let i = 2; i <= 5; i++) await append(sessionId, i);
  await waitFor(() => got.length === 5, { timeoutMs: 10_000 });
  expect(got).toEqual([1n, 2n, 3n, 4n, 5n]);
});

test("subscribers of one session share its reads; each gets exactly the events past its own seq", async () => {
  const sessionId = await f.newSession();
  for (let i = 1; i <= 700; i++) await append(sessionId, i); // more than one page (500)
  const got = new Map<bigint, bigint[]>();
  const subscribeFrom = (after: bigint) => {
    const list: bigint[] = [];
    got.set(after, list);
    return feed.subscribe(sessionId, after, (events) => list.push(...events.map((e) => e.seq)));
  };
  const offs = [subscribeFrom(700n), subscribeFrom(650n), subscribeFrom(0n)];
  const live = Promise.all(Array.from({ length: 30 }, (_, i) => append(sessionId, 1000 + i)));
  offs.push(subscribeFrom(300n)); // joins while the others are being fed
  await live;
  await waitFor(() => [...got.values()].every((l) => l.at(-1) === 730n), { timeoutMs: 10_000 });
  for (const [after, list] of got) expect(list).toEqual(Array.from({ length: 730 - Number(after) }, (_, i) => after + BigInt(i) + 1n));
  for (const off of offs) off();
});
