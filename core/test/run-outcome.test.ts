// RunOutcomes: a caller that posted a message waits for the run to settle (end, or park for an
// approval) and gets its answer from the stored events. Real engine, real worker, real Postgres.
import { afterAll, beforeAll, expect, test } from "vitest";
import { EventFeed } from "../src/engine/feed.js";
import { RunOutcomes } from "../src/engine/run-outcome.js";
import { RunWaitTimeoutError } from "../src/errors.js";
import { PermanentStepError, type NewEvent, type StepFn } from "../src/engine/types.js";
import { synthetic } from "./steps.js";
import { testLogger, useFixture } from "./fixture.js";

const f = useFixture();
let feed: EventFeed;
let outcomes: RunOutcomes;
beforeAll(async () => {
  feed = new EventFeed({ pool: f.pool, connectionString: f.url, logger: testLogger, pollMs: 200 });
  await feed.start();
  outcomes = new RunOutcomes({ engine: f.client, feed, timeoutMs: 30_000 });
});
afterAll(async () => {
  await feed?.stop();
});

const said = (content: string | null, usage: { promptTokens: number; completionTokens: number } | null = null): NewEvent => ({
  type: "assistant_message",
  payload: { message: { role: "assistant", content }, model: "m", finishReason: "stop", usage },
});

/** Appends `events` once (the step resumes from the log), then ends with `end`. */
function scripted(events: NewEvent[], end: () => "done" | "waiting_approval"): StepFn {
  return async (ctx) => {
    const mine = (await ctx.events()).filter((e) => e.runId === ctx.run.id && e.type !== "user_message");
    if (mine.length === 0) for (const e of events) await ctx.append(e);
    return end();
  };
}

async function postAndWait(content = "hi") {
  const sessionId = await f.newSession();
  const posted = await f.client.postMessage({ teamId: f.teamId, sessionId, content });
  const outcome = await outcomes.wait({ teamId: f.teamId, sessionId, runId: posted.runId, afterSeq: posted.seq });
  return { sessionId, posted, outcome };
}

test("a run that succeeds: the last assistant message is the answer; all of them and their usage are summed; other events are ignored", async () => {
  await f.startWorker({
    step: scripted(
      [
        said("Let me look. ", { promptTokens: 10, completionTokens: 4 }),
        synthetic("note", { x: 1 }),
        said("It is 42.", { promptTokens: 20, completionTokens: 3 }),
      ],
      () => "done",
    ),
  });
  const { outcome } = await postAndWait();
  expect(outcome).toEqual({
    status: "succeeded",
    content: "It is 42.",
    allContent: "Let me look. It is 42.",
    usage: { promptTokens: 30, completionTokens: 7 },
    error: null,
  });
});

test("a run that fails: the status and the run's failure reason", async () => {
  await f.startWorker({
    step: async (ctx) => {
      await ctx.append({ type: "model_error", payload: { code: "model_unavailable", message: "first try failed" } });
      throw new PermanentStepError("model provider said no");
    },
  });
  const { outcome } = await postAndWait();
  expect(outcome).toMatchObject({ status: "failed", content: "", allContent: "", error: "model provider said no" });
});

test("a run that parks for an approval settles as waiting_approval, with what it said so far", async () => {
  await f.startWorker({ step: scripted([said("I need your approval to delete the file.")], () => "waiting_approval") });
  const { outcome, posted } = await postAndWait();
  expect(outcome).toMatchObject({ status: "waiting_approval", content: "I need your approval to delete the file.", error: null });
  expect((await f.client.getRun({ teamId: f.teamId, runId: posted.runId })).status).toBe("waiting_approval");
});

test("a run that does not settle in time: RunWaitTimeoutError (504 timeout), and the run goes on", async () => {
  const short = new RunOutcomes({ engine: f.client, feed, timeoutMs: 300, pollMs: 50 });
  const sessionId = await f.newSession();
  const posted = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" }); // no worker: it stays queued
  const wait = short.wait({ teamId: f.teamId, sessionId, runId: posted.runId, afterSeq: posted.seq });
  await expect(wait).rejects.toThrow(RunWaitTimeoutError);
  await expect(wait).rejects.toMatchObject({ code: "timeout", status: 504, details: { sessionId, runId: posted.runId } });
  expect((await f.client.getRun({ teamId: f.teamId, runId: posted.runId })).status).toBe("queued");
  // A caller that goes away ends the wait the same way, long before the timeout.
  const gone = outcomes.wait({ teamId: f.teamId, sessionId, runId: posted.runId, afterSeq: posted.seq, signal: AbortSignal.abort() });
  await expect(gone).rejects.toThrow(RunWaitTimeoutError);
});

test("another team's run is not found", async () => {
  const sessionId = await f.newSession();
  const posted = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hi" });
  const other = await f.tenancy.createTeam({ slug: "other-outcome", name: "Other" });
  await expect(outcomes.wait({ teamId: other.id, sessionId, runId: posted.runId, afterSeq: posted.seq })).rejects.toMatchObject({
    code: "not_found",
    status: 404,
  });
});
