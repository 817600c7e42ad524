// Under load, one team's sandbox cannot take the host from the others (issue 14, "must show"):
// `keel worker` as shipped (demo model, real bubblewrap sandboxes, their memory cgroups and
// workspace images), two teams. Team A's agent fills its workspace and then its memory; each is
// stopped at the limit with a clear error in A's session, while team B's session completes its
// turn on the same worker and PostgreSQL keeps taking writes throughout.
import { expect, test } from "vitest";
import { eventPayload, readAllEvents } from "@keel/core";
import { waitFor } from "@keel/test/db";
import { useFixture } from "@keel/core/testing/fixture";
import { useKeelWorkers } from "./keel-workers.js";

const f = useFixture();
const workers = useKeelWorkers(f);

type ToolResult = { content: string; isError: boolean };

async function turn(teamId: string, sessionId: string, content: string): Promise<ToolResult> {
  const { runId } = await f.client.postMessage({ teamId, sessionId, content });
  await waitFor(async () => ["succeeded", "failed"].includes((await f.client.getRun({ teamId, runId })).status), { timeoutMs: 120_000, what: content });
  expect((await f.client.getRun({ teamId, runId })).status).toBe("succeeded");
  const events = await readAllEvents(f.pool, sessionId);
  const result = events.filter((e) => e.type === "tool_result" && e.runId === runId).at(-1);
  expect(result, `a tool result for "${content}"`).toBeDefined();
  return eventPayload<ToolResult>(result!);
}

test("a sandbox filling memory and disk is stopped at its limits; another team's turn completes and PostgreSQL keeps writing", async () => {
  const limits = { resources: { memoryMb: 512, workspaceMb: 64 } };
  const a = await f.tenancy.createTeam({ slug: "hog", name: "Hog" });
  const b = await f.tenancy.createTeam({ slug: "quiet", name: "Quiet" });
  const agentA = await f.tenancy.createAgent(a.id, { name: "hog", model: "demo", tools: ["exec"], sandboxPolicy: limits });
  const agentB = await f.tenancy.createAgent(b.id, { name: "quiet", model: "demo", tools: ["exec"] });
  const sessionA = (await f.tenancy.createSession(a.id, { agentId: agentA.id })).id;
  const sessionB = (await f.tenancy.createSession(b.id, { agentId: agentB.id })).id;

  const { child, exited } = workers.start();

  // PostgreSQL's writes during the load: one row every few ms, each must commit.
  await f.pool.query("CREATE TABLE load_probe (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
  let writing = true;
  let failedWrites = 0;
  const writer = (async () => {
    while (writing) await f.pool.query("INSERT INTO load_probe DEFAULT VALUES").catch(() => failedWrites++);
  })();

  const rowsBefore = Number((await f.pool.query("SELECT count(*) FROM load_probe")).rows[0].count);
  // 120 MB of tmpfs (/tmp is a quarter of memoryMb) and a 400 MB process: each under the 512 MB
  // per-process limit, together over the sandbox's.
  const [memory, quiet] = await Promise.all([
    turn(a.id, sessionA, `run head -c 120M /dev/zero > /tmp/fill && python3 -c "b = b'x' * (400 << 20); print('held')"`),
    turn(b.id, sessionB, "run echo quiet-team-ok"),
  ]);
  // Last: a full workspace (the runtime's exec records live outside it, in the sandbox's state dir).
  const [disk, again] = await Promise.all([turn(a.id, sessionA, "run head -c 300M /dev/zero > fill.bin"), turn(b.id, sessionB, "run echo still-ok")]);
  writing = false;
  await writer;

  // The command stops at ENOSPC and the error names the full workspace.
  expect(disk.content).toContain("the command ran out of disk space: the workspace is full");
  expect(memory.content).toContain("the command ran out of memory: it hit the sandbox's memory limit");
  expect(memory.content).not.toContain("held");
  expect(quiet).toMatchObject({ isError: false });
  expect(quiet.content).toContain("quiet-team-ok");
  expect(again.content).toContain("still-ok");
  expect(failedWrites).toBe(0);
  expect(Number((await f.pool.query("SELECT count(*) FROM load_probe")).rows[0].count)).toBeGreaterThan(rowsBefore);

  child.kill("SIGTERM");
  expect(await exited).toBe(0);
}, 300_000);
