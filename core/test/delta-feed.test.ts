// DeltaFeed: live token deltas reach the subscribers of their session only; a notification that
// is not a delta is dropped without breaking the feed; unsubscribe stops delivery. Deltas are sent
// by the worker's own notifier (agent/stream.ts) over a real Postgres NOTIFY. Absence is checked
// without sleeping: notifications on one channel arrive in commit order, so once a later delta has
// arrived, an earlier one that was going to arrive has.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { DeltaFeed } from "../src/engine/delta-feed.js";
import { notifyDeltas, STREAM_CHANNEL } from "../src/agent/stream.js";
import type { DeltaNotification } from "../src/contract/events.js";
import type { ClaimedRun } from "../src/engine/types.js";
import { waitFor } from "@keel/test/db";
import { testLogger, useFixture } from "./fixture.js";

const f = useFixture();
let feed: DeltaFeed;
beforeAll(async () => {
  feed = new DeltaFeed({ connectionString: f.url, logger: testLogger });
  await feed.start();
});
afterAll(async () => {
  await feed?.stop();
});

const runOf = (sessionId: string): ClaimedRun => ({
  id: randomUUID(),
  sessionId,
  teamId: f.teamId,
  epoch: 1n,
  attempt: 0,
  maxAttempts: 3,
  takeovers: 0,
  workerId: "w",
});

/** Sends a delta as the worker does and waits until it was notified. */
async function send(run: ClaimedRun, content: string): Promise<void> {
  const notify = notifyDeltas(f.pool);
  notify(run, { content });
  await notify.flush(run);
}

function collect(sessionId: string): { got: DeltaNotification[]; off: () => void } {
  const got: DeltaNotification[] = [];
  return { got, off: feed.subscribe(sessionId, (m) => got.push(m)) };
}

const texts = (l: DeltaNotification[]) => l.map((m) => m.delta.content);

test("a delta reaches every subscriber of its session, and no one else's", async () => {
  const a = runOf(randomUUID());
  const b = runOf(randomUUID());
  const [a1, a2, bSub] = [collect(a.sessionId), collect(a.sessionId), collect(b.sessionId)];
  await send(a, "for a");
  await waitFor(() => a1.got.length === 1 && a2.got.length === 1);
  expect(a1.got[0]).toMatchObject({ sessionId: a.sessionId, runId: a.id, n: 1, delta: { content: "for a" } });
  expect(texts(a2.got)).toEqual(["for a"]);
  await send(b, "for b");
  await waitFor(() => bSub.got.length === 1);
  expect(texts(bSub.got)).toEqual(["for b"]); // the delta of session a, notified first, never came here
  expect(texts(a1.got)).toEqual(["for a"]);
  for (const s of [a1, a2, bSub]) s.off();
});

test("a notification that is not a delta is dropped; the feed goes on delivering", async () => {
  const run = runOf(randomUUID());
  const sub = collect(run.sessionId);
  for (const bad of [
    "not json",
    "null",
    JSON.stringify({ sessionId: run.sessionId }),
    JSON.stringify({ sessionId: run.sessionId, runId: run.id, delta: { content: 42 } }),
    JSON.stringify([run.sessionId]),
  ]) {
    await f.pool.query("SELECT pg_notify($1, $2)", [STREAM_CHANNEL, bad]);
  }
  await send(run, "still here");
  await waitFor(() => sub.got.length === 1);
  expect(texts(sub.got)).toEqual(["still here"]);
  sub.off();
});

test("a subscriber that throws does not keep the delta from the others", async () => {
  const run = runOf(randomUUID());
  const offThrowing = feed.subscribe(run.sessionId, () => {
    throw new Error("subscriber bug");
  });
  const sub = collect(run.sessionId);
  await send(run, "one");
  await send(run, "two");
  await waitFor(() => sub.got.length === 2);
  expect(texts(sub.got)).toEqual(["one", "two"]);
  offThrowing();
  sub.off();
});

test("unsubscribe stops delivery to that subscriber only", async () => {
  const run = runOf(randomUUID());
  const gone = collect(run.sessionId);
  const stays = collect(run.sessionId);
  await send(run, "before");
  await waitFor(() => gone.got.length === 1 && stays.got.length === 1);
  gone.off();
  gone.off(); // twice is harmless
  await send(run, "after");
  await waitFor(() => stays.got.length === 2);
  expect(texts(stays.got)).toEqual(["before", "after"]);
  expect(texts(gone.got)).toEqual(["before"]);
  stays.off();
  // With no subscriber left, a delta for the session goes nowhere (and a new subscriber sees only later ones).
  await send(run, "to nobody");
  // flush() returns when the NOTIFY is sent, not when the feed got it: a marker on another session
  // (same channel, so it arrives after) shows "to nobody" was handled before `late` subscribes.
  const marker = runOf(randomUUID());
  const seen = collect(marker.sessionId);
  await send(marker, "marker");
  await waitFor(() => seen.got.length === 1);
  seen.off();
  const late = collect(run.sessionId);
  await send(run, "later");
  await waitFor(() => late.got.length === 1);
  expect(texts(late.got)).toEqual(["later"]);
  late.off();
});
