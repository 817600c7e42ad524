// The platform namespace's own NetworkPolicies (k8s/base/network.yaml, the kind overlay's Postgres
// policy) enforced on a real cluster:
// - a pod in `keel` without Keel's labels reaches nothing: not Postgres, not even DNS;
// - Postgres admits only web and worker pods: a pod of another namespace, whose own egress is
//   open, reaches the web's port but not Postgres;
// - the web pod reaches Postgres, but neither the API server (its Service or its endpoint on the
//   node) nor a sandbox pod's runtime port, while a worker reaches all three (the rest of the
//   suite runs every tool call through that path);
// - the worker's runtime-port rule is for team namespaces only: the same port of a pod elsewhere
//   stays closed to it.
// Each refusal has a control that connects: the destination listens and the probe works.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Api, connectFrom, connectFromPlatform, kubectl, kubectlJson, releaseSandbox, sandboxPod, waitFor, type SandboxPod } from "./kind.ts";

const stamp = Date.now();
const STRANGER = `e2e-stranger-${stamp}`;
const OUTSIDE_NS = "keel-e2e-platform-net";
const PG_NAME = "postgres.keel.svc.cluster.local."; // fully qualified: one DNS query, no search list

let sessionId = "";
let sandbox: SandboxPod;
let pg: { ip: string };
let outsider: { ip: string };

/** A pod that runs `command` in the sandbox image (python3 for the probes). */
function probePod(name: string, labels: Record<string, string>, command: string[], extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: {
      terminationGracePeriodSeconds: 0,
      // The keel namespace enforces Pod Security `restricted`.
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "probe",
          image: "keel-sandbox:dev",
          imagePullPolicy: "IfNotPresent",
          workingDir: "/tmp",
          command,
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
          ...extra,
        },
      ],
    },
  };
}

/** Exit code of resolving `name` in a pod with python3 (0: resolved, 3: no answer). */
function resolveFrom(ns: string, pod: string, name: string): number {
  const py = `import socket,sys\ntry:\n  socket.getaddrinfo(${JSON.stringify(name)}, 5432); sys.exit(0)\nexcept OSError: sys.exit(3)`;
  return kubectl(["-n", ns, "exec", pod, "--", "python3", "-c", py], { allowFail: true }).status;
}

/** The same from a worker pod, with node. */
function resolveFromWorker(name: string): number {
  const worker = kubectlJson<{ items: any[] }>([
    "-n",
    "keel",
    "get",
    "pods",
    "-l",
    "app.kubernetes.io/component=worker",
    "--field-selector=status.phase=Running",
  ]).items[0];
  const js = `require("dns").lookup(${JSON.stringify(name)},(e)=>process.exit(e?3:0))`;
  return kubectl(["-n", "keel", "exec", worker.metadata.name, "-c", "worker", "--", "node", "-e", js], { allowFail: true }).status;
}

beforeAll(async () => {
  pg = { ip: kubectlJson(["-n", "keel", "get", "pod", "postgres-0"]).status.podIP as string };
  kubectl(["-n", "keel", "apply", "-f", "-"], {
    input: JSON.stringify(probePod(STRANGER, { "app.kubernetes.io/name": "keel-e2e-stranger" }, ["sleep", "3600"])),
  });
  kubectl(["create", "namespace", OUTSIDE_NS], { allowFail: true });
  kubectl(["-n", OUTSIDE_NS, "apply", "-f", "-"], {
    input: JSON.stringify(
      probePod("outsider", { app: "outsider" }, ["python3", "-m", "http.server", "8080"], { readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }),
    ),
  });
  kubectl(["-n", "keel", "wait", "--for=condition=Ready", `pod/${STRANGER}`, "--timeout=180s"]);
  kubectl(["-n", OUTSIDE_NS, "wait", "--for=condition=Ready", "pod/outsider", "--timeout=180s"]);
  outsider = { ip: kubectlJson(["-n", OUTSIDE_NS, "get", "pod", "outsider"]).status.podIP as string };

  const api = await Api.login();
  ({ sessionId } = await api.agentSession(`e2e-platform-net-${stamp}`));
  await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run hostname" });
  await waitFor(async () => (await api.events(sessionId)).find((e) => e.type === "tool_result"), { what: "the first exec", timeoutMs: 300_000 });
  sandbox = await waitFor(() => sandboxPod(sessionId), { what: "the session's sandbox pod" });
});

afterAll(() => {
  if (sessionId) releaseSandbox(sessionId);
  kubectl(["-n", "keel", "delete", "pod", STRANGER, "--ignore-not-found", "--wait=false"], { allowFail: true });
  kubectl(["delete", "namespace", OUTSIDE_NS, "--ignore-not-found", "--wait=false"], { allowFail: true });
});

describe.sequential("the platform namespace's own network", () => {
  test("a pod in the keel namespace without Keel's labels reaches neither Postgres nor DNS; web and worker pods reach both", () => {
    expect(connectFromPlatform("web", pg.ip, 5432)).toBe(0);
    expect(connectFromPlatform("worker", pg.ip, 5432)).toBe(0);
    expect(resolveFromWorker(PG_NAME)).toBe(0);
    expect(connectFrom("keel", STRANGER, pg.ip, 5432)).toBe(3);
    expect(resolveFrom("keel", STRANGER, PG_NAME)).toBe(3);
  });

  test("Postgres admits only web and worker pods: a pod of another namespace with open egress reaches the web's port, not Postgres", () => {
    const webIp = kubectlJson<{ items: any[] }>(["-n", "keel", "get", "pods", "-l", "app.kubernetes.io/component=web", "--field-selector=status.phase=Running"])
      .items[0].status.podIP as string;
    expect(connectFrom(OUTSIDE_NS, "outsider", webIp, 3000)).toBe(0);
    expect(connectFrom(OUTSIDE_NS, "outsider", pg.ip, 5432)).toBe(3);
  });

  test("the web pod reaches neither the API server (Service or endpoint) nor a sandbox's runtime port; a worker reaches all three", () => {
    const svc = kubectlJson(["-n", "default", "get", "service", "kubernetes"]);
    const endpoint = kubectlJson(["-n", "default", "get", "endpoints", "kubernetes"]).subsets[0];
    const targets: [string, string, number][] = [
      ["the API server's Service", svc.spec.clusterIP as string, svc.spec.ports[0].port as number],
      ["the API server's endpoint", endpoint.addresses[0].ip as string, endpoint.ports[0].port as number],
      ["the sandbox runtime", sandbox.ip, 8080],
    ];
    const from = (component: "web" | "worker") => Object.fromEntries(targets.map(([what, host, port]) => [what, connectFromPlatform(component, host, port)]));
    expect(from("worker")).toEqual(Object.fromEntries(targets.map(([what]) => [what, 0])));
    expect(from("web")).toEqual(Object.fromEntries(targets.map(([what]) => [what, 3])));
  });

  test("the worker's runtime-port rule is for team namespaces only: port 8080 of a pod elsewhere stays closed to it", () => {
    // Control: the outsider's listener answers on its pod address.
    expect(connectFrom(OUTSIDE_NS, "outsider", outsider.ip, 8080)).toBe(0);
    expect(connectFromPlatform("worker", outsider.ip, 8080)).toBe(3);
  });
});
