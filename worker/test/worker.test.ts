// `keel worker` as shipped: the agent loop with the demo model and sandbox tools, in real
// processes. A file written in turn 1 is read in turn 3 after the worker was SIGKILLed between.
import { expect, test } from "vitest";
import { eventPayload, readAllEvents } from "@keel/core";
import { waitFor } from "@keel/test/db";
import { useFixture } from "@keel/core/testing/fixture";
import { useKeelWorkers } from "./keel-workers.js";

const f = useFixture();
const workers = useKeelWorkers(f);
const startWorker = () => workers.start();

async function turn(sessionId: string, content: string): Promise<{ content: string; isError: boolean } | undefined> {
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content });
  await waitFor(async () => (await f.client.getRun({ teamId: f.teamId, runId })).status === "succeeded", { timeoutMs: 60_000, what: content });
  const events = await readAllEvents(f.pool, sessionId);
  const result = events.filter((e) => e.type === "tool_result" && e.runId === runId).at(-1);
  return result ? eventPayload<{ content: string; isError: boolean }>(result) : undefined;
}

test("files in the session's sandbox survive a SIGKILLed worker; turn 3 reads what turn 1 wrote", async () => {
  const agent = await f.tenancy.createAgent(f.teamId, { name: "builder", model: "demo", tools: ["exec", "read_file"] });
  const sessionId = (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;

  const first = startWorker();
  const wrote = await turn(sessionId, "run echo kept-across-crashes > notes.txt && echo done");
  expect(wrote).toMatchObject({ isError: false });
  expect(wrote!.content).toContain("done");
  first.child.kill("SIGKILL");
  expect(await first.exited).toBe("SIGKILL");

  const second = startWorker();
  await turn(sessionId, "hello again");
  const read = await turn(sessionId, "run cat notes.txt");
  expect(read!.content).toContain("kept-across-crashes");
  // Isolation holds for the shipped worker too: no network by default.
  const net = await turn(sessionId, "run getent hosts example.com || echo no-network");
  expect(net!.content).toContain("no-network");
  second.child.kill("SIGTERM");
  expect(await second.exited).toBe(0);
}, 180_000);
