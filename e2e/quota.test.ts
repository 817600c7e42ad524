// A team over its sandbox quota, on a real cluster: each team namespace's ResourceQuota (the
// operator's KEEL_SANDBOX_QUOTA_*) caps what its sandboxes use together. A team whose agents ask
// for 8 GB sandboxes fits five in the default 40 GB of memory limits; the sixth session gets the
// quota's refusal as a visible error in its log at once (the agent's exec fails with it), and no
// pod or claim of it is left Pending to take the next free slot. A team of its own (the web's
// first-admin bootstrap), so the other files' sandboxes of the default team are not counted.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Api, bootstrapTeam, kubectl, kubectlJson, releaseSandbox, sandboxPod, waitFor } from "./kind.ts";

const stamp = Date.now();
const team = { slug: `e2e-q-${stamp}`, email: `e2e-q-${stamp}@keel.local`, password: randomBytes(12).toString("base64url") };
const BOOTSTRAP_POD = `e2e-bootstrap-q-${stamp}`;
const BIG = { template: "e2e-big", resources: { memoryMb: 8192 } };
let api: Api;
const sessions: string[] = [];

beforeAll(async () => {
  bootstrapTeam(team, BOOTSTRAP_POD);
  api = await Api.login({ email: team.email, password: team.password });
});

afterAll(() => {
  for (const s of sessions) releaseSandbox(s);
  kubectl(["-n", "keel", "delete", "pod", BOOTSTRAP_POD, "--ignore-not-found", "--wait=false"], { allowFail: true });
});

/** Posts "run hostname" to a new session of a big-sandbox agent; its first tool_result. */
async function firstExec(i: number): Promise<{ sessionId: string; result: { payload: any } }> {
  const { sessionId } = await api.agentSession(`e2e-q-${stamp}-${i}`, BIG);
  sessions.push(sessionId);
  await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run hostname" });
  const result = await waitFor(async () => (await api.events(sessionId)).find((e) => e.type === "tool_result"), {
    what: `session ${i}'s first exec`,
    timeoutMs: 300_000,
  });
  return { sessionId, result };
}

test("the sixth 8 GB sandbox of a team with 40 GB of memory: a clear quota error in the session at once, nothing left Pending", async () => {
  const five = await Promise.all([1, 2, 3, 4, 5].map(firstExec));
  for (const { sessionId, result } of five) {
    expect(JSON.stringify(result.payload)).not.toMatch(/quota/);
    expect(sandboxPod(sessionId)).not.toBeNull();
  }
  const me = await api.call<{ teamId: string }>("GET", "/api/v1/me");
  const quota = kubectlJson(["-n", `keel-team-${me.teamId}`, "get", "resourcequota", "keel-sandboxes"]);
  expect(quota.status.used["limits.memory"]).toBe("40Gi");

  const sixth = await firstExec(6);
  const text = JSON.stringify(sixth.result.payload);
  expect(text).toMatch(new RegExp(`team ${me.teamId} is at its sandbox quota, so a new sandbox cannot start \\(its pod was refused\\)`));
  expect(text).toMatch(/limits\.memory 40Gi of 40Gi in use, 8Gi more asked/);
  expect(text).toMatch(/Release sandboxes this team no longer needs .* or ask the operator to raise KEEL_SANDBOX_QUOTA_MEMORY_MB/);
  // Nothing of it waits for a slot: its claim was deleted, so no pod of it is Pending either.
  expect(
    kubectlJson<{ items: unknown[] }>(["get", "sandboxclaims.extensions.agents.x-k8s.io", "-A", "-l", `keel.dev/session=${sixth.sessionId}`]).items,
  ).toEqual([]);
  expect(sandboxPod(sixth.sessionId)).toBeNull();
  expect(sixth.result.payload).toMatchObject({ isError: true, state: "failed" });
  // The model was told (as with any failed tool call) and answered: the turn ended, nothing waits.
  await waitFor(async () => (await api.events(sixth.sessionId)).filter((e) => e.type === "assistant_message").length >= 2, {
    what: "the model's answer after the refused exec",
  });
});
