// A team over its sandbox quota, seen from a session: the agent loop (real Postgres, a scripted
// OpenAI-compatible server on loopback) calls `exec`, whose sandbox the Kubernetes driver cannot
// start because the team namespace's ResourceQuota refuses the pod (the real control plane, the
// driver as the platform ServiceAccount). The session's log gets a failed tool_result that says
// so, the model reads it, and the run finishes: no turn stuck behind a Pending pod.
// Needs the control plane binaries: KEEL_CP_BIN_DIR, and its own KEEL_CP_STATE_DIR and ports.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { createAgentStep } from "../../src/agent/loop.js";
import { createModelResolver } from "../../src/agent/models.js";
import { outboundPolicy } from "../../src/agent/outbound.js";
import { readAllEvents } from "../../src/engine/events.js";
import { eventPayload } from "../../src/engine/types.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";
import { createSandboxTools } from "../../src/sandbox/tools.js";
import { builtinTools, ToolRegistry } from "../../src/tools/tools.js";
import { applyPlatformRbac, claimsOfSession, deleteTeamNamespaces, testDriver, type PlatformIdentity } from "../k8s/helpers.ts";
import { startFakeOpenAI, textStream, toolCallStream, type FakeOpenAI } from "../support/fake-openai.js";
import { testLogger, useFixture } from "../fixture.js";

const f = useFixture();
const prefix = `kqs${randomBytes(2).toString("hex")}-`;
let fake: FakeOpenAI;
let home: TestNamespace;
let platform: PlatformIdentity;

beforeAll(async () => {
  await startControlPlane();
  home = await createTestNamespace("kqs-home");
  platform = await applyPlatformRbac(home.name, prefix);
  fake = await startFakeOpenAI();
}, 600_000);

afterAll(async () => {
  await fake?.close();
  await deleteTeamNamespaces(prefix);
  await platform?.cleanup();
  await home?.cleanup();
}, 120_000);

test("a team over its sandbox quota: the exec call fails in the session's log with the quota's words, the model reads them, the run finishes", async () => {
  // No pods at all for this team: every sandbox start is over quota. readyTimeoutMs is far above
  // the test's timeout, so an acquire that waited for readiness would fail the test.
  const driver = testDriver(platform.kubeconfig, prefix, { readyTimeoutMs: 600_000, apiRetryMs: 2_000, teamQuota: { pods: 0 } });
  const tools = createSandboxTools(driver, async () => ({ policy: parseSandboxPolicy({}), secrets: {} }));
  const step = createAgentStep({
    pool: f.pool,
    tools: new ToolRegistry([...builtinTools, ...tools]),
    // The scripted provider listens on loopback, an internal address workers refuse unless listed.
    models: createModelResolver({ maxRetries: 2, timeoutMs: 3_000, outbound: outboundPolicy({ internal: ["127.0.0.1"] }) }),
    logger: testLogger,
  });
  await f.startWorker({ step });
  const agent = await f.tenancy.createAgent(f.teamId, {
    name: "quota",
    model: "gpt-test",
    provider: { kind: "openai-compatible", baseUrl: fake.url, maxRetries: 2, timeoutMs: 3_000 },
    tools: ["exec"],
  });
  const sessionId = (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;
  fake.enqueue(
    { kind: "stream", chunks: toolCallStream([{ id: "q1", name: "exec", args: '{"command":"echo hi"}' }]) },
    { kind: "stream", chunks: textStream("Your team has no room for a sandbox right now.") },
  );
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "run echo hi" });
  await waitFor(
    async () => {
      const s = (await f.client.getRun({ teamId: f.teamId, runId })).status;
      if (s === "failed" || s === "cancelled") throw new Error(`run ended ${s}`);
      return s === "succeeded";
    },
    { timeoutMs: 60_000, what: "the run to finish" },
  );

  const events = await readAllEvents(f.pool, sessionId);
  expect(events.map((e) => e.type)).toEqual(["user_message", "assistant_message", "tool_result", "assistant_message"]);
  const result = eventPayload<{ tool_call_id: string; content: string; isError: boolean; state: string }>(events[2]!);
  const ns = `${prefix}${f.teamId}`;
  expect(result).toMatchObject({
    tool_call_id: "q1",
    isError: true,
    state: "failed",
    content:
      `Error: team ${f.teamId} is at its sandbox quota, so a new sandbox cannot start (its pod was refused): pods 0 of 0 in use, 1 more asked ` +
      `(ResourceQuota keel-sandboxes in namespace ${ns}). Release sandboxes this team no longer needs ` +
      `(a suspended one frees its pod but keeps its workspace volume), or ask the operator to raise KEEL_SANDBOX_QUOTA_PODS`,
  });
  // The model was given the same words as the call's result.
  const toolMessage = fake.requests.at(-1)!.json.messages.find((m: any) => m.role === "tool");
  expect(toolMessage).toMatchObject({ tool_call_id: "q1", content: result.content });
  // Nothing left behind to take the team's next free pod.
  await waitFor(async () => (await claimsOfSession(ns, sessionId)).length === 0, { what: "the refused claim deleted" });
}, 120_000);
