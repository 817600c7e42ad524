// The sandbox workspace is a PersistentVolumeClaim from the team's SandboxTemplate (k8s/README.md):
// files an agent writes survive an idle suspend (the reaper scales the Sandbox to zero: the pod
// goes, the claim and its volume stay) and a sandbox pod deleted under it. With the emptyDir it
// replaced, the next turn found an empty workspace without a word.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Api, kubectl, kubectlJson, releaseSandbox, sandboxPod, waitFor } from "./kind.ts";

let api: Api;
let sessionId = "";

beforeAll(async () => {
  api = await Api.login();
  // Idle after 5 s: the workers' reaper (every 30 s by default) suspends it soon after a turn.
  ({ sessionId } = await api.agentSession(`e2e-workspace-${Date.now()}`, { idleTimeoutMs: 5_000 }));
});

afterAll(() => {
  if (sessionId) releaseSandbox(sessionId);
});

/** Posts one message and waits for the demo model's answer after its tool; returns the tool result. */
async function turn(content: string): Promise<string> {
  const before = (await api.events(sessionId)).length;
  await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content });
  const events = await waitFor(
    async () => {
      const all = (await api.events(sessionId)).slice(before);
      return all.some((e) => e.type === "assistant_message" && JSON.stringify(e.payload).includes("The tool returned")) ? all : null;
    },
    { what: `the answer to "${content}"`, timeoutMs: 300_000 },
  );
  return JSON.stringify(events.find((e) => e.type === "tool_result")?.payload ?? null);
}

function workspaceClaims(): string[] {
  return kubectlJson<{ items: any[] }>(["get", "pvc", "-A", "-o", "json"])
    .items.filter((c) => (c.metadata.ownerReferences ?? []).some((o: any) => o.kind === "Sandbox"))
    .map((c) => `${c.metadata.namespace}/${c.metadata.name}`);
}

describe.sequential("the sandbox workspace on kind", () => {
  test("files survive an idle suspend and resume", async () => {
    expect(await turn("run echo kept-$((6*7)) > kept.txt && cat kept.txt")).toContain("kept-42");
    const pod = sandboxPod(sessionId)!;
    expect(pod).not.toBeNull();
    const claimsBefore = workspaceClaims();
    // Suspended: the session's sandbox says so and its pod is gone; its volume claim stays.
    await waitFor(
      async () => (await api.call<{ sandbox: { state: string } | null }>("GET", `/api/v1/sessions/${sessionId}/sandbox`)).sandbox?.state === "suspended",
      { what: "the idle sandbox to be suspended", timeoutMs: 240_000 },
    );
    await waitFor(() => sandboxPod(sessionId) === null, { what: "the suspended sandbox's pod to go" });
    expect(workspaceClaims()).toEqual(claimsBefore);
    // The next turn resumes it on the same volume.
    expect(await turn("run cat kept.txt")).toContain("kept-42");
  });

  test("files survive a sandbox pod deleted under it", async () => {
    // A turn first, so the sandbox is running whatever the reaper did since.
    expect(await turn("run cat kept.txt")).toContain("kept-42");
    const pod = (await waitFor(() => sandboxPod(sessionId), { what: "the session's sandbox pod" }))!;
    const uid = (): string => kubectlJson(["-n", pod.namespace, "get", "pod", pod.name]).metadata.uid;
    const deleted = uid();
    kubectl(["-n", pod.namespace, "delete", "pod", pod.name, "--wait=true", "--timeout=120s"]);
    expect(await turn("run cat kept.txt")).toContain("kept-42");
    // A new pod (agent-sandbox names it after the Sandbox, so the name stays) on the same volume.
    const now = (await waitFor(() => sandboxPod(sessionId), { what: "the new sandbox pod" }))!;
    expect(kubectlJson(["-n", now.namespace, "get", "pod", now.name]).metadata.uid).not.toBe(deleted);
  });
});
