// The platform ServiceAccount (the workers' sandbox driver) is confined by the API server, not
// by its own code: as that ServiceAccount, every escalation a compromised worker would try is
// refused with the reason (k8s/base/rbac.yaml + admission.yaml), while Keel's own objects pass.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { DEFAULT_TEAM_QUOTA, limitRangeObject, namespaceObject, quotaObject, templateObject } from "../../src/sandbox/k8s/objects.ts";
import { parseSandboxPolicy } from "../../src/sandbox/policy.ts";
import { applyPlatformRbac, deleteTeamNamespaces, type PlatformIdentity } from "./helpers.ts";

const create = ["create", "-f", "-"];
const prefix = `kc${randomBytes(2).toString("hex")}-`;
const team = `${prefix}t1`;
let home: TestNamespace;
let platform: PlatformIdentity;
let as: string;

beforeAll(async () => {
  await startControlPlane();
  home = await createTestNamespace("kz-conf");
  platform = await applyPlatformRbac(home.name, prefix);
  as = `--as=system:serviceaccount:${home.name}:${platform.serviceAccount}`;
  // The API server loads policies and bindings a moment after they are written: live once a
  // write outside the team namespaces is refused with the policy's message (a dry run: nothing
  // is kept even before then).
  await waitFor(
    async () =>
      /writes only in namespaces named/.test(
        (await asPlatform([...create, "--dry-run=server"], { apiVersion: "v1", kind: "Secret", metadata: { name: "probe", namespace: "kube-system" } })).stderr,
      ),
    { timeoutMs: 60_000, what: "the platform's RBAC and admission policy to take effect" },
  );
  const ns = await asPlatform(["apply", "--server-side", "--field-manager=keel", "-f", "-"], namespaceObject(team, "t1"));
  expect(ns.stderr).toBe("");
}, 120_000);

afterAll(async () => {
  await deleteTeamNamespaces(prefix);
  await platform?.cleanup();
  await home?.cleanup();
}, 120_000);

function asPlatform(args: string[], input?: unknown) {
  return kubectl([...args, as], { allowFailure: true, ...(input === undefined ? {} : { input: JSON.stringify(input) }) });
}

/** Keel's own template for the team, as the driver writes it. */
function keelTemplate(namespace = team): any {
  const policy = parseSandboxPolicy({});
  const cfg = {
    image: "registry.invalid/keel:test",
    runtimePort: 8080,
    cpu: "1",
    workers: { namespace: "keel", podLabels: { app: "keel-worker" } },
    priorityClassName: "keel-sandbox",
  };
  return templateObject(namespace, "tpl", "t1", policy, cfg, "hash") as any;
}

/** Every write expected to be refused is tried as a server-side dry run: admission runs, and nothing is stored if it is not refused. */
async function refused(args: string[], input: unknown, message: RegExp): Promise<string> {
  const r = await asPlatform(args[0] === "get" ? args : [...args, "--dry-run=server"], input);
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(message) });
  return r.stderr;
}

test("Keel's own namespace, template, ResourceQuota and LimitRange pass the policy (the driver's writes are not refused)", async () => {
  const r = await asPlatform(create, keelTemplate());
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  for (const obj of [quotaObject(team, "t1", DEFAULT_TEAM_QUOTA), limitRangeObject(team, "t1", DEFAULT_TEAM_QUOTA, "1")]) {
    const w = await asPlatform(["apply", "--server-side", "--field-manager=keel", "-f", "-"], obj);
    expect({ code: w.code, stderr: w.stderr }).toEqual({ code: 0, stderr: "" });
  }
});

test("a sandbox pod with another PriorityClass, or none: refused (it would preempt, or outrank, the platform's pods)", async () => {
  const msg = /denied request: a sandbox pod runs with priorityClassName keel-sandbox \(below the platform, never preempting\)/;
  for (const [name, change] of [
    ["prio-critical", (s: any) => (s.priorityClassName = "system-cluster-critical")],
    ["prio-platform", (s: any) => (s.priorityClassName = "keel-platform")],
    ["prio-none", (s: any) => delete s.priorityClassName],
  ] as const) {
    const t = keelTemplate();
    t.metadata.name = name;
    change(t.spec.podTemplate.spec);
    await refused(create, t, msg);
  }
  // Nor by changing a template the driver made.
  const own = keelTemplate();
  own.metadata.name = "prio-update";
  expect((await asPlatform(create, own)).code).toBe(0);
  const patch = JSON.stringify({ spec: { podTemplate: { spec: { priorityClassName: "keel-platform" } } } });
  await refused(["patch", "sandboxtemplates.v1beta1.extensions.agents.x-k8s.io", "prio-update", "-n", team, "--type=merge", "-p", patch], undefined, msg);
  // A Sandbox made before the class existed (here by the admin, as the controller would have):
  // the worker's suspend still passes; giving it a class other than keel-sandbox does not.
  const old = {
    apiVersion: "agents.x-k8s.io/v1beta1",
    kind: "Sandbox",
    metadata: { name: "pre-class", namespace: team },
    spec: keelTemplate().spec.podTemplate,
  };
  delete old.spec.spec.priorityClassName;
  old.spec = { podTemplate: old.spec };
  await kubectl(["create", "-f", "-"], { input: JSON.stringify(old) });
  const suspend = await asPlatform([
    "patch",
    "sandboxes.v1beta1.agents.x-k8s.io",
    "pre-class",
    "-n",
    team,
    "--type=merge",
    "-p",
    '{"spec":{"operatingMode":"Suspended"}}',
    "--dry-run=server",
  ]);
  expect({ code: suspend.code, stderr: suspend.stderr }).toEqual({ code: 0, stderr: "" });
  await refused(["patch", "sandboxes.v1beta1.agents.x-k8s.io", "pre-class", "-n", team, "--type=merge", "-p", patch], undefined, msg);
});

test("a privileged container, an added capability, a writable root or a container that keeps its capabilities: refused", async () => {
  const msg = /denied request: every sandbox container is unprivileged/;
  const variants: ((c: any) => void)[] = [
    (c) => (c.securityContext.privileged = true),
    (c) => (c.securityContext.capabilities.add = ["SYS_ADMIN"]),
    (c) => (c.securityContext.readOnlyRootFilesystem = false),
    (c) => (c.securityContext.allowPrivilegeEscalation = true),
    (c) => (c.securityContext.capabilities.drop = []),
    (c) => delete c.securityContext,
  ];
  for (const [i, change] of variants.entries()) {
    const t = keelTemplate();
    t.metadata.name = `bad-${i}`;
    change(t.spec.podTemplate.spec.containers[0]);
    await refused(create, t, msg);
  }
  // An init container is a container too.
  const t = keelTemplate();
  t.metadata.name = "bad-init";
  t.spec.podTemplate.spec.initContainers = [{ name: "root", image: "busybox", securityContext: { privileged: true } }];
  await refused(create, t, msg);
});

test("host namespaces, a hostPath volume, another ServiceAccount or a mounted token, root: refused, each with its reason", async () => {
  const cases: [string, (s: any) => void, RegExp][] = [
    ["hostnet", (s) => (s.hostNetwork = true), /may not use the node's network, PID or IPC namespace/],
    ["hostpid", (s) => (s.hostPID = true), /may not use the node's network, PID or IPC namespace/],
    ["hostpath", (s) => s.volumes.push({ name: "root", hostPath: { path: "/" } }), /may not mount a hostPath volume/],
    ["sa", (s) => (s.serviceAccountName = "keel-platform"), /default ServiceAccount with automountServiceAccountToken: false/],
    ["token", (s) => (s.automountServiceAccountToken = true), /default ServiceAccount with automountServiceAccountToken: false/],
    ["root", (s) => (s.securityContext.runAsNonRoot = false), /runAsNonRoot: true/],
  ];
  for (const [name, change, msg] of cases) {
    const t = keelTemplate();
    t.metadata.name = `bad-${name}`;
    change(t.spec.podTemplate.spec);
    await refused(create, t, msg);
  }
});

test("outside keel-team-* namespaces: a template in kube-system, a namespace of another name, a Secret, ResourceQuota or LimitRange in kube-system: refused", async () => {
  await refused(create, keelTemplate("kube-system"), new RegExp(`writes only in namespaces named ${prefix}\\*, not in kube-system`));
  await refused(create, keelTemplate(home.name), new RegExp(`not in ${home.name}`));
  await refused(create, namespaceObject(`${prefix.slice(0, -1)}x-other`, "t1"), /writes only in namespaces named/);
  await refused(
    create,
    { apiVersion: "v1", kind: "Secret", metadata: { name: "keel-sneak", namespace: "kube-system" }, stringData: { a: "b" } },
    /not in kube-system/,
  );
  // A team's limits are written only in team namespaces too: a ResourceQuota or LimitRange
  // elsewhere (e.g. one starving kube-system or the platform's own namespace) is refused.
  await refused(create, quotaObject("kube-system", "t1", { ...DEFAULT_TEAM_QUOTA, pods: 0 }), /writes only in namespaces named .*, not in kube-system/);
  await refused(create, quotaObject(home.name, "t1", { ...DEFAULT_TEAM_QUOTA, pods: 0 }), new RegExp(`not in ${home.name}`));
  await refused(create, limitRangeObject("kube-system", "t1", DEFAULT_TEAM_QUOTA, "1"), /not in kube-system/);
});

test("a team's ResourceQuota above admission.yaml's ceiling, missing a key or scoped: refused; lower passes", async () => {
  const apply = ["apply", "--server-side", "--field-manager=keel", "-f", "-"];
  const quota = (change: (q: any) => void = () => {}) => {
    const q: any = quotaObject(team, "t1", DEFAULT_TEAM_QUOTA);
    change(q);
    return q;
  };
  await refused(
    apply,
    quota((q) => (q.spec.hard.pods = "21")),
    /names every key, none above admission.yaml's ceiling \(raise it with KEEL_SANDBOX_QUOTA_\*\): pods <= 20$/m,
  );
  await refused(
    apply,
    quota((q) => (q.spec.hard["limits.memory"] = "1Ti")),
    /: limits.memory <= 40960Mi$/m,
  );
  await refused(
    apply,
    quota((q) => delete q.spec.hard["requests.storage"]),
    /: requests.storage <= 204800Mi$/m,
  );
  await refused(
    apply,
    quota((q) => (q.spec.hard = {})),
    /ceiling .*: .*pods <= 20/,
  );
  // A scope would let the quota count nothing. The API server's own validation refuses every scope
  // with these keys before the policy's rule is reached (kept in case a scope ever fits them all).
  const scoped = quota((q) => (q.spec.scopeSelector = { matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["nothing"] }] }));
  scoped.metadata.name = "scoped";
  await refused(create, scoped, /scope/);
  const lower = await asPlatform(
    [...apply, "--dry-run=server"],
    quota((q) => (q.spec.hard.pods = "1")),
  );
  expect({ code: lower.code, stderr: lower.stderr }).toEqual({ code: 0, stderr: "" });
});

test("deleting namespaces (the reaper's, for deleted teams): the platform's own namespace or any other refused; a team namespace allowed", async () => {
  // (kube-system, default and kube-public the API server itself never deletes.)
  await refused(["delete", "namespace", home.name], undefined, new RegExp(`writes only in namespaces named ${prefix}\\*, not in ${home.name}`));
  const other = await createTestNamespace("kz-conf-other");
  try {
    await refused(["delete", "namespace", other.name], undefined, new RegExp(`not in ${other.name}`));
  } finally {
    await other.cleanup();
  }
  expect(await asPlatform(["delete", "namespace", team, "--dry-run=server"])).toMatchObject({ code: 0 });
});

test("a team namespace's Pod Security label cannot be lifted, lowered to an old version or removed", async () => {
  await refused(
    ["label", "namespace", team, "pod-security.kubernetes.io/enforce=privileged", "--overwrite"],
    undefined,
    /keeps the label pod-security.kubernetes.io\/enforce=restricted/,
  );
  await refused(["label", "namespace", team, "pod-security.kubernetes.io/enforce-version=v1.0"], undefined, /at the latest version/);
  await refused(["label", "namespace", team, "pod-security.kubernetes.io/enforce-"], undefined, /keeps the label/);
  // Creating a team namespace without it is refused too.
  const bare = namespaceObject(`${prefix}t2`, "t2");
  delete bare.metadata.labels!["pod-security.kubernetes.io/enforce"];
  await refused(create, bare, /keeps the label/);
});

test("reading Secrets: refused everywhere, kube-system and team namespaces included (RBAC)", async () => {
  for (const ns of ["kube-system", team, "default"]) {
    await refused(["get", "secrets", "-n", ns], undefined, /forbidden: User "system:serviceaccount:[^"]+" cannot list resource "secrets"/);
  }
});

test("what the ServiceAccount may do, as `kubectl auth can-i --list` shows it (k8s/README.md lists the same)", async () => {
  const r = await kubectl(["auth", "can-i", "--list", "-n", team, as]);
  const rows = r.stdout
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((l) => l.trim().split(/\s{2,}/))
    .map(([resource, , names, verbs]) => `${resource} ${names === "[]" ? "" : names + " "}${verbs}`.replace(/\s+/g, " "))
    .filter((l) => !l.startsWith("self") && !l.startsWith("["))
    .sort();
  expect(rows).toEqual([
    "limitranges [create patch]",
    "namespaces [get list create patch delete]",
    "resourcequotas [create patch]",
    "sandboxclaims.extensions.agents.x-k8s.io [get list watch create delete]",
    "sandboxes.agents.x-k8s.io [get list watch patch]",
    "sandboxtemplates.extensions.agents.x-k8s.io [get create patch]",
    "sandboxwarmpools.extensions.agents.x-k8s.io [get create patch]",
    "secrets [create patch]",
  ]);
});
