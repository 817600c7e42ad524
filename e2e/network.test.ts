// NetworkPolicy on a real cluster, between teams and to an allowed CIDR. Team B is created the
// way Keel creates teams (there is no API for it): a web process's first-admin bootstrap
// (KEEL_ADMIN_EMAIL/PASSWORD/TEAM), here a one-off pod copied from the keel-web Deployment. Then:
// - team A's sandbox cannot open a TCP connection to team B's sandbox pod (its runtime port, or
//   another port something listens on in it), even with B's address on A's egress allow-list,
//   while a worker pod reaches B's runtime: B's ingress admits only the workers;
// - an egress allow-list entry (a test server's pod IP and port) is reachable from a sandbox
//   whose agent lists it, and the same address is not from one whose agent does not, nor on
//   a port the entry does not name.
// - `0.0.0.0/0` on an allow-list is the internet, not the cluster: the API server (its Service and
//   its endpoint on the node) and the nodes stay unreachable; the pod network, which the kind
//   overlay opens to allow-lists (KEEL_SANDBOX_EGRESS_INTERNAL), stays reachable.
// - a host name on an allow-list goes through the shared egress proxy (k8s/base/egress-proxy.yaml)
//   with the template's signed grant: the listed name answers, an unlisted name and another port
//   of the listed one are refused by the proxy (403), and the same address directly is closed.
// Each egress policy gets its own SandboxTemplate (sandboxPolicy.template), so the two team A
// agents never share a NetworkPolicy.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Api, bootstrapTeam, connectFrom, connectFromPlatform, kubectl, kubectlJson, releaseSandbox, sandboxPod, waitFor, type SandboxPod } from "./kind.ts";

const NET_NS = "keel-e2e-net";
const stamp = Date.now();
const teamB = { slug: `e2e-b-${stamp}`, email: `e2e-b-${stamp}@keel.local`, password: randomBytes(12).toString("base64url") };
const BOOTSTRAP_POD = `e2e-bootstrap-${stamp}`;

let apiA: Api;
let apiB: Api;
const sessions: string[] = [];
let target: { ip: string };
let podB: SandboxPod;
let podAllow: SandboxPod;
let podNone: SandboxPod;
let podWorld: SandboxPod;
let podNamed: SandboxPod;
// Headless Services (their names resolve to the target pod's IP, in the pod network the kind
// overlay opens): one listed on an allow-list, one not.
const NAMED = `named.${NET_NS}.svc.cluster.local`;
const UNNAMED = `unnamed.${NET_NS}.svc.cluster.local`;

/** A session of `api`'s team whose first exec starts its sandbox pod; returns the pod. */
async function sandboxSession(api: Api, name: string, sandboxPolicy: Record<string, unknown> = {}): Promise<SandboxPod> {
  const { sessionId } = await api.agentSession(name, sandboxPolicy);
  sessions.push(sessionId);
  await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run hostname" });
  await waitFor(async () => (await api.events(sessionId)).find((e) => e.type === "tool_result"), { what: `${name}'s first exec`, timeoutMs: 300_000 });
  return waitFor(() => sandboxPod(sessionId), { what: `${name}'s sandbox pod` });
}

const connectFromWorker = (host: string, port: number) => connectFromPlatform("worker", host, port);

/** Exit code of opening an ICMP socket in a pod, raw (ping as root) or datagram (unprivileged ping): 0 opened, 3 refused. */
function icmpSocket(pod: SandboxPod): number {
  const py =
    "import socket,sys\nfor t in (socket.SOCK_RAW, socket.SOCK_DGRAM):\n  try:\n    socket.socket(socket.AF_INET, t, socket.IPPROTO_ICMP); sys.exit(0)\n  except PermissionError: pass\nsys.exit(3)";
  return kubectl(["-n", pod.namespace, "exec", pod.name, "--", "python3", "-c", py], { allowFail: true }).status;
}

beforeAll(async () => {
  apiA = await Api.login();
  bootstrapTeam(teamB, BOOTSTRAP_POD);
  apiB = await Api.login({ email: teamB.email, password: teamB.password });
  expect((await apiB.call<{ teamId: string }>("GET", "/api/v1/me")).teamId).not.toBe((await apiA.call<{ teamId: string }>("GET", "/api/v1/me")).teamId);

  // The allowed destination: a pod outside every policy, listening on 8081 and 8082.
  kubectl(["create", "namespace", NET_NS], { allowFail: true });
  kubectl(["-n", NET_NS, "apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "target", labels: { "app.kubernetes.io/name": "keel-e2e-target" } },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: "target",
            image: "keel-sandbox:dev",
            imagePullPolicy: "IfNotPresent",
            workingDir: "/tmp",
            command: ["sh", "-c", "python3 -m http.server 8082 & exec python3 -m http.server 8081"],
            readinessProbe: { tcpSocket: { port: 8081 }, periodSeconds: 1 },
          },
        ],
      },
    }),
  });
  kubectl(["-n", NET_NS, "wait", "--for=condition=Ready", "pod/target", "--timeout=180s"]);
  for (const name of ["named", "unnamed"]) {
    kubectl(["-n", NET_NS, "apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name },
        spec: { clusterIP: "None", selector: { "app.kubernetes.io/name": "keel-e2e-target" }, ports: [{ name: "http", port: 8081 }] },
      }),
    });
  }
  target = { ip: kubectlJson(["-n", NET_NS, "get", "pod", "target"]).status.podIP as string };

  podB = await sandboxSession(apiB, `e2e-net-b-${stamp}`);
  // Something else listening in B's pod, besides the runtime.
  kubectl(["-n", podB.namespace, "exec", podB.name, "--", "sh", "-c", "cd /tmp && setsid -f python3 -m http.server 9000 >/dev/null 2>&1 </dev/null"]);
  await waitFor(() => connectFrom(podB.namespace, podB.name, "127.0.0.1", 9000) === 0, { what: "the listener on port 9000 in team B's sandbox" });

  podAllow = await sandboxSession(apiA, `e2e-net-allow-${stamp}`, { template: "e2e-allow", egress: { allow: [`${target.ip}/32:8081`, `${podB.ip}/32`] } });
  podNone = await sandboxSession(apiA, `e2e-net-none-${stamp}`);
  podWorld = await sandboxSession(apiA, `e2e-net-world-${stamp}`, { template: "e2e-world", egress: { allow: ["0.0.0.0/0"] } });
  podNamed = await sandboxSession(apiA, `e2e-net-named-${stamp}`, { template: "e2e-named", egress: { allow: [`${NAMED}:8081`] } });
  expect(podAllow.namespace).toBe(podNone.namespace);
  expect(podAllow.namespace).not.toBe(podB.namespace);
});

afterAll(() => {
  for (const s of sessions) releaseSandbox(s);
  kubectl(["delete", "namespace", NET_NS, "--ignore-not-found", "--wait=false"], { allowFail: true });
  kubectl(["-n", "keel", "delete", "pod", BOOTSTRAP_POD, "--ignore-not-found", "--wait=false"], { allowFail: true });
});

describe.sequential("NetworkPolicy between teams and to an allowed CIDR", () => {
  test("team A's sandbox reaches no port of team B's sandbox pod, even with B's address on its egress allow-list, and cannot ping at all; a worker reaches B's runtime", () => {
    // Controls: B's runtime answers its workers, and B's second listener is up.
    expect(connectFromWorker(podB.ip, 8080)).toBe(0);
    expect(connectFrom(podB.namespace, podB.name, "127.0.0.1", 9000)).toBe(0);
    // A's egress to the pod network works (the allowed target answers), so what stops it below is B's ingress.
    expect(connectFrom(podAllow.namespace, podAllow.name, target.ip, 8081)).toBe(0);
    expect(connectFrom(podAllow.namespace, podAllow.name, podB.ip, 8080)).toBe(3);
    expect(connectFrom(podAllow.namespace, podAllow.name, podB.ip, 9000)).toBe(3);
    expect(connectFrom(podNone.namespace, podNone.name, podB.ip, 8080)).toBe(3);
    // No ping either: a sandbox cannot open an ICMP socket at all (every capability dropped, and
    // the node's ping_group_range leaves unprivileged ICMP off), so TCP is all there is to stop.
    // If this ever opens, B must be checked against ping as well.
    expect(icmpSocket(podAllow)).toBe(3);
  });

  test("an allowed CIDR is reachable; the same address is not without the entry, nor on a port the entry does not name", async () => {
    expect(connectFrom(podAllow.namespace, podAllow.name, target.ip, 8081)).toBe(0);
    expect(connectFrom(podAllow.namespace, podAllow.name, target.ip, 8082)).toBe(3);
    expect(connectFrom(podNone.namespace, podNone.name, target.ip, 8081)).toBe(3);
    // And through the product: the agent's own exec fetches from the allowed address.
    const sessionId = sessions[1]!;
    await apiA.call("POST", `/api/v1/sessions/${sessionId}/messages`, {
      content: `run curl -sS -m 10 -o /dev/null -w 'status=%{http_code}' http://${target.ip}:8081/`,
    });
    const result = await waitFor(async () => (await apiA.events(sessionId)).filter((e) => e.type === "tool_result")[1], {
      what: "the agent's curl",
      timeoutMs: 120_000,
    });
    expect(JSON.stringify(result.payload)).toContain("status=200");
  });

  test("0.0.0.0/0 is the internet, not the cluster: no way to the API server's Service, its endpoint on the node or the metadata address; the opened pod network still answers", () => {
    const svc = kubectlJson(["-n", "default", "get", "service", "kubernetes"]);
    const endpoint = kubectlJson(["-n", "default", "get", "endpoints", "kubernetes"]).subsets[0];
    const apiServer = { ip: svc.spec.clusterIP as string, port: svc.spec.ports[0].port as number };
    const node = { ip: endpoint.addresses[0].ip as string, port: endpoint.ports[0].port as number };
    // Controls: both answer a worker, and the sandbox's egress works where it is open.
    expect(connectFromWorker(apiServer.ip, apiServer.port)).toBe(0);
    expect(connectFromWorker(node.ip, node.port)).toBe(0);
    expect(connectFrom(podWorld.namespace, podWorld.name, target.ip, 8081)).toBe(0);
    // Cut out of 0.0.0.0/0: private networks (the Service range, the nodes) and link-local.
    expect(connectFrom(podWorld.namespace, podWorld.name, apiServer.ip, apiServer.port)).toBe(3);
    expect(connectFrom(podWorld.namespace, podWorld.name, node.ip, node.port)).toBe(3);
    expect(connectFrom(podWorld.namespace, podWorld.name, "169.254.169.254", 80)).toBe(3);
  });
  test("a listed host name is reached through the egress proxy; an unlisted name, another port of the listed one and the address directly are not", async () => {
    const curl = (url: string) =>
      kubectl(["-n", podNamed.namespace, "exec", podNamed.name, "--", "sh", "-c", `curl -sS -m 10 -o /dev/null -w '%{http_code}' ${url}`], { allowFail: true });
    expect(curl(`http://${NAMED}:8081/`).stdout).toBe("200");
    // Refused by the proxy, with its reason in the answer's status.
    expect(curl(`http://${UNNAMED}:8081/`).stdout).toBe("403");
    expect(curl(`http://${NAMED}:8082/`).stdout).toBe("403");
    // Not around it: the name's address is closed to this pod (NetworkPolicy), and nothing resolves names in the pod.
    expect(connectFrom(podNamed.namespace, podNamed.name, target.ip, 8081)).toBe(3);
    const direct = kubectl(["-n", podNamed.namespace, "exec", podNamed.name, "--", "sh", "-c", `curl -sS -m 10 --noproxy '*' http://${NAMED}:8081/`], {
      allowFail: true,
    });
    expect(direct.status).not.toBe(0);
    // And through the product: the agent's own exec.
    const sessionId = sessions.at(-1)!;
    await apiA.call("POST", `/api/v1/sessions/${sessionId}/messages`, {
      content: `run curl -sS -m 10 -o /dev/null -w 'status=%{http_code}' http://${NAMED}:8081/`,
    });
    const result = await waitFor(async () => (await apiA.events(sessionId)).filter((e) => e.type === "tool_result")[1], {
      what: "the agent's curl by name",
      timeoutMs: 120_000,
    });
    expect(JSON.stringify(result.payload)).toContain("status=200");
  });
});
