// Exercises the real control plane from controlplane/up.sh: agent-sandbox CRDs + controller,
// kube-scheduler + kwok (pods become Ready), kube-controller-manager garbage collection, RBAC.
// Each test starts the control plane itself (once per process; up.sh is idempotent) rather than in
// beforeAll, so a control plane that cannot start fails every test here instead of skipping them.
import { afterAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, kubectlJson, startControlPlane, waitFor, type TestNamespace } from "../harness.ts";

const namespaces: TestNamespace[] = [];
async function namespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix);
  namespaces.push(ns);
  return ns.name;
}

afterAll(async () => {
  await Promise.all(namespaces.map((ns) => ns.cleanup()));
}, 300_000);

type Condition = { type: string; status: string; reason?: string };
const condition = (obj: any, type: string): string | undefined => (obj?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type)?.status;

async function getOrNull(args: string[]): Promise<any | null> {
  const res = await kubectl([...args, "-o", "json"], { allowFailure: true });
  if (res.code === 0) return JSON.parse(res.stdout);
  if (/NotFound|not found/.test(res.stderr)) return null;
  throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
}

test("a SandboxClaim gets a ready Sandbox and Pod from a warm pool; deleting it garbage-collects them", async () => {
  await startControlPlane();
  const ns = await namespace("sbx");
  await kubectl(["apply", "-n", ns, "-f", "-"], {
    input: `
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata:
  name: agent
spec:
  podTemplate:
    metadata:
      labels:
        app: keel-agent
    spec:
      containers:
      - name: agent
        image: registry.invalid/keel/agent:test
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata:
  name: agents
spec:
  replicas: 1
  sandboxTemplateRef:
    name: agent
`,
  });

  // The pool controller creates a Sandbox, the Sandbox controller its Pod; kube-scheduler binds
  // the Pod to the kwok node and kwok marks it Running/Ready with an IP.
  await waitFor(
    async () => (await kubectlJson(["get", "sandboxwarmpools.v1beta1.extensions.agents.x-k8s.io", "agents", "-n", ns])).status?.readyReplicas === 1,
    { timeoutMs: 90_000, what: "warm pool to have 1 ready sandbox" },
  );

  await kubectl(["apply", "-n", ns, "-f", "-"], {
    input: `
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata:
  name: claim-1
spec:
  warmPoolRef:
    name: agents
`,
  });

  const claim = await waitFor(
    async () => {
      const c = await kubectlJson(["get", "sandboxclaims.v1beta1.extensions.agents.x-k8s.io", "claim-1", "-n", ns]);
      return condition(c, "Ready") === "True" && c.status?.sandbox?.name ? c : undefined;
    },
    { timeoutMs: 90_000, what: "SandboxClaim claim-1 Ready" },
  );
  const sandboxName: string = claim.status.sandbox.name;

  const sandbox = await kubectlJson(["get", "sandboxes.v1beta1.agents.x-k8s.io", sandboxName, "-n", ns]);
  expect(condition(sandbox, "Ready")).toBe("True");
  // The claimed Sandbox now belongs to the claim (so GC follows the claim).
  expect(sandbox.metadata.ownerReferences).toEqual(
    expect.arrayContaining([expect.objectContaining({ kind: "SandboxClaim", name: "claim-1", uid: claim.metadata.uid })]),
  );

  const pods = await kubectlJson(["get", "pods", "-n", ns]);
  const pod = pods.items.find((p: any) => (p.metadata.ownerReferences ?? []).some((o: any) => o.kind === "Sandbox" && o.uid === sandbox.metadata.uid));
  expect(pod, `pod owned by sandbox ${sandboxName}`).toBeTruthy();
  expect(pod.spec.nodeName).toBe("kwok-node-0");
  expect(pod.status.phase).toBe("Running");
  expect(condition(pod, "Ready")).toBe("True");
  expect(pod.status.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  expect(claim.status.sandbox.podIPs ?? sandbox.status.podIPs).toContain(pod.status.podIP);

  // Foreground deletion: the claim only goes away after kube-controller-manager's garbage
  // collector has deleted its dependents (the Sandbox, and through it the Pod).
  await kubectl(["delete", "sandboxclaims.v1beta1.extensions.agents.x-k8s.io", "claim-1", "-n", ns, "--cascade=foreground", "--wait=false"]);
  await waitFor(
    async () =>
      (await getOrNull(["get", "sandboxclaims.v1beta1.extensions.agents.x-k8s.io", "claim-1", "-n", ns])) === null &&
      (await getOrNull(["get", "sandboxes.v1beta1.agents.x-k8s.io", sandboxName, "-n", ns])) === null &&
      (await getOrNull(["get", "pod", pod.metadata.name, "-n", ns])) === null,
    { timeoutMs: 90_000, what: `claim, sandbox ${sandboxName} and pod ${pod.metadata.name} to be deleted` },
  );
}, 300_000);

test("kubectl auth can-i follows RBAC for a ServiceAccount", async () => {
  await startControlPlane();
  const ns = await namespace("rbac");
  const as = `--as=system:serviceaccount:${ns}:robot`;
  await kubectl(["create", "serviceaccount", "robot", "-n", ns]);

  const canI = async (...args: string[]) => {
    const res = await kubectl(["auth", "can-i", ...args, "-n", ns, as], { allowFailure: true });
    return res.stdout.trim();
  };
  expect(await canI("list", "pods")).toBe("no");
  expect(await canI("create", "sandboxclaims.extensions.agents.x-k8s.io")).toBe("no");

  await kubectl(["create", "role", "claimer", "-n", ns, "--verb=get,list,watch,create,delete", "--resource=pods,sandboxclaims.extensions.agents.x-k8s.io"]);
  await kubectl(["create", "rolebinding", "robot-claimer", "-n", ns, "--role=claimer", `--serviceaccount=${ns}:robot`]);

  await waitFor(async () => (await canI("list", "pods")) === "yes", { timeoutMs: 30_000, what: "RBAC to allow list pods" });
  expect(await canI("create", "sandboxclaims.extensions.agents.x-k8s.io")).toBe("yes");
  // Only what the Role grants, and only in its namespace.
  expect(await canI("delete", "secrets")).toBe("no");
  const other = await kubectl(["auth", "can-i", "list", "pods", "-n", "default", as], { allowFailure: true });
  expect(other.stdout.trim()).toBe("no");
}, 300_000);
