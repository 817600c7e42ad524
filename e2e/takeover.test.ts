// A worker pod force-deleted mid-tool-call (`kubectl delete --force --grace-period=0`, no drain):
// another worker takes the run over; `exec` is not idempotent, so the engine does not send it again
// and records a visible "indeterminate" result the model sees, and the command, which went on
// running in the sandbox pod, ran exactly once.
import { afterAll, beforeAll, expect, test } from "vitest";
import { Api, kubectl, kubectlJson, releaseSandbox, sandboxPod, waitFor } from "./kind.ts";

let api: Api;
let sessionId = "";

beforeAll(async () => {
  api = await Api.login();
  ({ sessionId } = await api.agentSession(`e2e-takeover-${Date.now()}`));
});

afterAll(() => {
  if (sessionId) releaseSandbox(sessionId);
});

test("every worker pod force-deleted while exec runs: the run is taken over and completes, the exec is reported indeterminate and ran once", async () => {
  await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run echo started >> runs.txt && sleep 20 && echo finished >> runs.txt" });
  // The command is running in the pod once runs.txt has its line.
  const pod = await waitFor(
    () => {
      const p = sandboxPod(sessionId);
      return p && kubectl(["-n", p.namespace, "exec", p.name, "--", "cat", "/workspace/runs.txt"], { allowFail: true }).stdout.includes("started") ? p : null;
    },
    { what: "the exec to start in the sandbox pod" },
  );
  const workers = kubectlJson<{ items: any[] }>(["-n", "keel", "get", "pods", "-l", "app.kubernetes.io/component=worker"]).items.map(
    (p) => p.metadata.name as string,
  );
  expect(workers.length).toBeGreaterThan(0);
  kubectl(["-n", "keel", "delete", "pod", ...workers, "--force", "--grace-period=0"]);

  const result = await waitFor(async () => (await api.events(sessionId)).find((e) => e.type === "tool_result"), {
    what: "the tool result after the takeover",
    timeoutMs: 240_000,
  });
  expect(result.payload).toMatchObject({ name: "exec", isError: true, state: "indeterminate" });
  expect(result.payload.content).toMatch(/interrupted .* not run again because it is not idempotent/);
  await waitFor(
    async () => (await api.events(sessionId)).find((e) => e.type === "assistant_message" && JSON.stringify(e.payload).includes("The tool returned")),
    { what: "the run to finish" },
  );
  // The command went on in the sandbox to its end, once.
  const lines = await waitFor(
    () => {
      const out = kubectl(["-n", pod.namespace, "exec", pod.name, "--", "cat", "/workspace/runs.txt"]).stdout.trim().split("\n");
      return out.includes("finished") ? out : null;
    },
    { what: "the command to finish in the pod" },
  );
  expect(lines).toEqual(["started", "finished"]);
  const seqs = (await api.events(sessionId)).map((e) => Number(e.seq));
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  // The replacements are running: the Deployment brought the workers back.
  kubectl(["-n", "keel", "rollout", "status", "deployment/keel-worker", "--timeout=180s"]);
});
