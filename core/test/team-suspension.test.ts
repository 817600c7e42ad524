// A suspended team's queued runs wait: the claim's WHERE skips them (teams.suspended_at), they
// stay queued (not failed, not lost) while other teams' runs go on, and resuming wakes the
// workers (a NOTIFY: the fallback poll here is a minute, so only the wake-up can start the run).
import { describe, expect, test } from "vitest";
import { waitFor } from "@keel/test/db";
import { claimRun } from "../src/engine/lifecycle.js";
import { Platform } from "../src/access/platform.js";
import { useFixture } from "./fixture.js";
import { countingStep } from "./steps.js";

const f = useFixture();
const status = async (runId: string) => (await f.client.getRun({ teamId: f.teamId, runId })).status;

describe("suspended team", () => {
  test("claimRun skips a suspended team's queued run and takes another team's", async () => {
    const platform = new Platform({ pool: f.pool });
    const other = await platform.createTeam("operator", { slug: "other-claim" });
    const otherAgent = await f.tenancy.createAgent(other.id, { name: "o", model: "demo" });
    const otherSession = await f.tenancy.createSession(other.id, { agentId: otherAgent.id });
    const mine = await f.client.postMessage({ teamId: f.teamId, sessionId: await f.newSession(), content: "wait" });
    await platform.suspendTeam("operator", f.teamId, "unpaid invoice");
    const theirs = await f.client.postMessage({ teamId: other.id, sessionId: otherSession.id, content: "go" });
    const claim = await claimRun(f.pool, "w-1", 60_000);
    expect(claim?.id).toBe(theirs.runId);
    expect(await claimRun(f.pool, "w-2", 60_000)).toBeNull();
    expect(await status(mine.runId)).toBe("queued");
    await platform.resumeTeam("operator", f.teamId);
    expect((await claimRun(f.pool, "w-3", 60_000))?.id).toBe(mine.runId);
  });

  test("a worker leaves the run queued while suspended, and runs it once resumed (woken, not polled)", async () => {
    const platform = new Platform({ pool: f.pool });
    await platform.suspendTeam("operator", f.teamId, "maintenance");
    await f.startWorker({ step: countingStep({ steps: 1 }), pollMs: 60_000 });
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId: await f.newSession(), content: "hello" });
    // The post's own NOTIFY woke the worker; a later post of another team shows the worker is idle
    // and claiming, not stuck: its run succeeds while ours stays queued.
    const other = await platform.createTeam("operator", { slug: "other-worker" });
    const agent = await f.tenancy.createAgent(other.id, { name: "o", model: "demo" });
    const session = await f.tenancy.createSession(other.id, { agentId: agent.id });
    const theirs = await f.client.postMessage({ teamId: other.id, sessionId: session.id, content: "go" });
    await waitFor(async () => (await f.client.getRun({ teamId: other.id, runId: theirs.runId })).status === "succeeded", { what: "the other team's run" });
    expect(await status(runId)).toBe("queued");
    await platform.resumeTeam("operator", f.teamId);
    await waitFor(async () => (await status(runId)) === "succeeded", { what: "the resumed team's run" });
  });
});
