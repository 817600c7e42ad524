// A session's sandbox on a real cluster: the demo model's `exec` runs in an agent-sandbox pod
// (what it prints and writes is what kubectl finds in that pod), and the pod's NetworkPolicy
// (egress "none", the default) is enforced by the cluster's network: the web Service and Postgres
// are out of its reach, while a pod without the policy reaches the web Service and a worker pod
// reaches Postgres (which admits only web and worker pods: e2e/platform-network.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Api, connectFrom as connect, connectFromPlatform, kubectl, kubectlJson, releaseSandbox, sandboxPod, waitFor } from "./kind.ts";

let api: Api;
let sessionId = "";
let pod: NonNullable<ReturnType<typeof sandboxPod>>;
const PROBE_NS = "keel-e2e-probe";

beforeAll(async () => {
  api = await Api.login();
  ({ sessionId } = await api.agentSession(`e2e-exec-${Date.now()}`));
});

afterAll(() => {
  kubectl(["delete", "namespace", PROBE_NS, "--ignore-not-found", "--wait=false"], { allowFail: true });
  if (sessionId) releaseSandbox(sessionId);
});

describe.sequential("sandbox pods on kind", () => {
  test("the agent's exec runs in a sandbox pod: it prints the pod's hostname and writes a file kubectl reads back", async () => {
    await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run echo e2e-$((6*7)) > marker.txt && hostname" });
    const result = await waitFor(async () => (await api.events(sessionId)).find((e) => e.type === "tool_result"), {
      what: "the exec tool's result",
      timeoutMs: 300_000,
    });
    pod = (await waitFor(() => sandboxPod(sessionId), { what: "the session's sandbox pod" }))!;
    expect(JSON.stringify(result.payload)).toContain(pod.name);
    expect(kubectl(["-n", pod.namespace, "exec", pod.name, "--", "cat", "/workspace/marker.txt"]).stdout.trim()).toBe("e2e-42");
    // The run finishes: the demo model answers with what the tool returned.
    await waitFor(
      async () => (await api.events(sessionId)).find((e) => e.type === "assistant_message" && JSON.stringify(e.payload).includes("The tool returned")),
      { what: "the answer after the tool" },
    );
  });

  test("egress none: the sandbox reaches neither the web Service nor Postgres; a pod without the policy reaches the web Service, a worker Postgres", async () => {
    const webIp = kubectlJson(["-n", "keel", "get", "service", "keel-web"]).spec.clusterIP as string;
    const pgIp = kubectlJson(["-n", "keel", "get", "pod", "postgres-0"]).status.podIP as string;
    // Controls first: the same probe from a pod outside any sandbox policy connects to the web,
    // and a worker (one of the two kinds of pod Postgres admits) to Postgres, so a refusal below
    // is the sandbox's policy, not the probe or the destination.
    kubectl(["create", "namespace", PROBE_NS], { allowFail: true });
    kubectl(["-n", PROBE_NS, "apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "probe" },
        spec: {
          containers: [{ name: "probe", image: "keel-sandbox:dev", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }],
          terminationGracePeriodSeconds: 0,
        },
      }),
    });
    kubectl(["-n", PROBE_NS, "wait", "--for=condition=Ready", "pod/probe", "--timeout=180s"]);
    expect(connect(PROBE_NS, "probe", webIp, 3000)).toBe(0);
    expect(connectFromPlatform("worker", pgIp, 5432)).toBe(0);

    expect(connect(pod.namespace, pod.name, webIp, 3000)).toBe(3);
    expect(connect(pod.namespace, pod.name, pgIp, 5432)).toBe(3);
    // And the sandbox itself still answers its worker (ingress from the worker namespace is allowed):
    // a second exec in the same session works.
    await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run cat marker.txt" });
    await waitFor(async () => (await api.events(sessionId)).filter((e) => e.type === "tool_result").find((e) => JSON.stringify(e.payload).includes("e2e-42")), {
      what: "the second exec's result",
    });
  });
});
