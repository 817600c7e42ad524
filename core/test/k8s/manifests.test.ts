// k8s/: every overlay renders with kustomize and is accepted by the real API server
// (server-side dry run: schema, defaulting, admission), has the shape the issue asks for, and the
// platform ServiceAccount's RBAC grants exactly what the sandbox driver calls.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import { AGENT_SANDBOX_VERSION, RUNTIME_PORT, WORKER_POD_LABELS } from "../../src/sandbox/k8s/names.ts";
import { DEFAULT_TEAM_QUOTA, egressRules, namespaceObject, quotaObject, templateObject } from "../../src/sandbox/k8s/objects.ts";
import { parseSandboxPolicy } from "../../src/sandbox/policy.ts";
import { afterAll, expect, test } from "vitest";
import { createTestNamespace, kubectl, startControlPlane, waitFor, type TestNamespace } from "@keel/controlplane/harness";
import { applyPlatformRbac, repoRoot, retargetedOverlay, type PlatformIdentity } from "./helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 120_000);

async function namespace(prefix: string): Promise<string> {
  const ns: TestNamespace = await createTestNamespace(prefix);
  cleanups.push(() => ns.cleanup());
  return ns.name;
}

type Obj = { kind: string; metadata: { name: string; namespace?: string }; spec?: any; data?: Record<string, string>; rules?: any[] };
async function render(dir: string): Promise<Obj[]> {
  const out = (await kubectl(["kustomize", dir])).stdout;
  return loadAllYaml(out) as Obj[];
}
const find = (objs: Obj[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);

for (const overlay of ["kind", "production"]) {
  test(`overlay ${overlay}: kustomize renders it and the API server accepts it (server-side dry run)`, async () => {
    await startControlPlane();
    const objs = await render(`${repoRoot}/k8s/overlays/${overlay}`);
    expect(objs.filter((o) => o.metadata.namespace && o.metadata.namespace !== "keel")).toEqual([]);

    const webDeployment = find(objs, "Deployment", "keel-web")!.spec;
    const web = webDeployment.template.spec;
    expect(web.initContainers[0].args).toEqual(["migrate"]);
    expect(web.containers[0].ports[0].containerPort).toBe(3000);
    expect(web.containers[0].readinessProbe.httpGet.path).toBe("/readyz");
    expect(web.containers[0].livenessProbe.httpGet.path).toBe("/healthz");
    const worker = find(objs, "Deployment", "keel-worker")!.spec;
    expect(worker.replicas).toBeGreaterThanOrEqual(2);
    const drainMs = Number(find(objs, "ConfigMap", "keel-config")!.data!.KEEL_DRAIN_MS);
    expect(worker.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
    expect(worker.template.spec.serviceAccountName).toBe("keel-platform");
    // The worker's /metrics: the port it listens on (config), the one it declares, and the one the scrape annotation names agree.
    const metricsPort = Number(find(objs, "ConfigMap", "keel-config")!.data!.KEEL_WORKER_METRICS_PORT);
    expect(metricsPort).toBeGreaterThan(0);
    expect(worker.template.spec.containers[0].ports).toEqual([{ name: "metrics", containerPort: metricsPort }]);
    expect(worker.template.metadata.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(metricsPort),
      "prometheus.io/path": "/metrics",
    });
    expect(find(objs, "PodDisruptionBudget", "keel-worker")).toBeTruthy();
    expect(find(objs, "Service", "keel-web")).toBeTruthy();
    for (const d of objs.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet")) {
      for (const c of [...(d.spec.template.spec.initContainers ?? []), ...d.spec.template.spec.containers]) {
        expect(c.resources?.requests, `${d.metadata.name}/${c.name} requests`).toBeTruthy();
        expect(c.resources?.limits, `${d.metadata.name}/${c.name} limits`).toBeTruthy();
      }
    }

    // Migrations: one `keel migrate` init container in both Deployments, so neither process runs
    // before the schema is current; rollouts never take a pod away before its successor is Ready,
    // so a failing migration leaves the old pods serving.
    for (const d of [webDeployment, worker]) {
      const init = d.template.spec.initContainers;
      expect(init.map((c: any) => [c.name, c.args, c.image])).toEqual([["migrate", ["migrate"], d.template.spec.containers[0].image]]);
      expect(init[0].env).toContainEqual({ name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: "keel-secrets", key: "DATABASE_URL" } } });
      expect(d.strategy.rollingUpdate.maxUnavailable).toBe(0);
      // The database CA (k8s/README.md, Postgres TLS) is where sslrootcert= says, in every container.
      expect(d.template.spec.volumes).toContainEqual({ name: "db-ca", secret: { secretName: "keel-db-ca", optional: true } });
      for (const c of [...init, ...d.template.spec.containers])
        expect(c.volumeMounts).toContainEqual({ name: "db-ca", mountPath: "/etc/keel/db-ca", readOnly: true });
      // Required keys named one by one (not optional): a missing key stops the pod with the key's name.
      const required = d.template.spec.containers[0].env
        .filter((e: any) => e.valueFrom?.secretKeyRef)
        .map((e: any) => [e.name, e.valueFrom.secretKeyRef.optional ?? false]);
      expect(required).toEqual(
        expect.arrayContaining([
          ["DATABASE_URL", false],
          ["KEEL_SECRETS_KEY", false],
        ]),
      );
    }
    // The web: a startup probe before liveness counts; a shutdown delay (readyz 503 while still
    // serving) inside a grace period that also covers the in-flight grace; a PDB.
    const webEnv = Object.fromEntries(web.containers[0].env.filter((e: any) => "value" in e).map((e: any) => [e.name, Number(e.value)]));
    expect(web.containers[0].startupProbe.httpGet.path).toBe("/healthz");
    expect(webEnv.KEEL_SHUTDOWN_DELAY_MS).toBeGreaterThan(0);
    expect(web.terminationGracePeriodSeconds * 1000).toBeGreaterThan(webEnv.KEEL_SHUTDOWN_DELAY_MS! + webEnv.KEEL_SHUTDOWN_GRACE_MS!);
    expect(find(objs, "PodDisruptionBudget", "keel-web")!.spec.maxUnavailable).toBe(1);
    // The sandbox image is its own image name, and the ConfigMap carries what kustomize set.
    const config = find(objs, "ConfigMap", "keel-config")!.data!;
    // The shared egress proxy: what KEEL_SANDBOX_EGRESS_PROXY names is its Service; it runs the
    // proxy bundle of the platform image with the grants' key, no ServiceAccount token; only team
    // namespaces reach it.
    const proxy = find(objs, "Deployment", "keel-egress")!.spec.template.spec;
    const proxySvc = find(objs, "Service", "keel-egress")!.spec;
    expect(config.KEEL_SANDBOX_EGRESS_PROXY).toBe(`keel-egress:${proxySvc.ports[0].port}`);
    expect(proxy.containers[0].command).toEqual(["/usr/bin/tini", "--", "node", "/app/sandbox/dist/egress-proxy.mjs", "--port", "3128"]);
    expect(proxy.containers[0].image).toBe(web.containers[0].image);
    expect(proxy.containers[0].env).toEqual([{ name: "KEEL_SECRETS_KEY", valueFrom: { secretKeyRef: { name: "keel-secrets", key: "KEEL_SECRETS_KEY" } } }]);
    expect(proxy.automountServiceAccountToken).toBe(false);
    expect(proxySvc.selector).toEqual(find(objs, "Deployment", "keel-egress")!.spec.selector.matchLabels);
    expect(JSON.parse(JSON.stringify(find(objs, "NetworkPolicy", "keel-egress")!.spec.ingress))).toEqual([
      // (the client library names the field `_from`)
      { _from: [{ namespaceSelector: { matchLabels: { "app.kubernetes.io/managed-by": "keel" } } }], ports: [{ protocol: "TCP", port: 3128 }] },
    ]);
    expect(config.KEEL_SANDBOX_IMAGE).toMatch(/keel-sandbox:[\w.-]+$/);
    expect(config.KEEL_SANDBOX_IMAGE).not.toBe(web.containers[0].image);
    // The quota policy's ceiling is the quota the overlay configures (the driver's defaults, README.md's
    // table, where it sets none): what the workers write passes it, and an overlay raising one raised both.
    const ceiling = find(objs, "ValidatingAdmissionPolicy", "keel-platform-quota")!.spec.variables.find((v: any) => v.name === "ceiling").expression;
    const configured = {
      ...DEFAULT_TEAM_QUOTA,
      ...(config.KEEL_SANDBOX_QUOTA_PODS ? { pods: Number(config.KEEL_SANDBOX_QUOTA_PODS) } : {}),
      ...(config.KEEL_SANDBOX_QUOTA_CPU ? { cpu: config.KEEL_SANDBOX_QUOTA_CPU } : {}),
    };
    expect(Object.fromEntries([...ceiling.matchAll(/'([\w.-]+)': '([^']+)'/g)].map((m: string[]) => [m[1], m[2]]))).toEqual(
      quotaObject("x", "x", configured).spec.hard,
    );
    if (overlay === "production") expect(configured).toEqual(DEFAULT_TEAM_QUOTA);
    // The platform's pods run above every sandbox; sandboxes never preempt (priority.yaml).
    const platformClass = find(objs, "PriorityClass", "keel-platform") as any;
    const sandboxClass = find(objs, "PriorityClass", "keel-sandbox") as any;
    expect(sandboxClass).toMatchObject({ preemptionPolicy: "Never", globalDefault: false });
    expect(platformClass.value).toBeGreaterThan(sandboxClass.value);
    expect(platformClass.value).toBeLessThan(1_000_000_000); // user classes stop there; system-* are above
    for (const d of objs.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet"))
      expect([d.metadata.name, d.spec.template.spec.priorityClassName]).toEqual([d.metadata.name, "keel-platform"]);
    if (overlay === "kind") {
      const pg = find(objs, "StatefulSet", "postgres")!;
      expect(pg.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeTruthy();
      expect(find(objs, "Secret", "keel-secrets")).toBeTruthy();
    } else {
      // Production brings its own database: no Postgres, and no Secret in git.
      expect(objs.find((o) => o.kind === "StatefulSet")).toBeUndefined();
      expect(find(objs, "Secret", "keel-secrets")).toBeUndefined();
      expect(web.containers[0].envFrom).toContainEqual({ secretRef: { name: "keel-secrets" } });
      // The first admin comes from required Secret keys: nobody is locked out of a new install.
      expect(web.containers[0].env).toEqual(
        expect.arrayContaining([
          { name: "KEEL_ADMIN_EMAIL", valueFrom: { secretKeyRef: { name: "keel-secrets", key: "KEEL_ADMIN_EMAIL" } } },
          { name: "KEEL_ADMIN_PASSWORD", valueFrom: { secretKeyRef: { name: "keel-secrets", key: "KEEL_ADMIN_PASSWORD" } } },
        ]),
      );
      // A private registry: platform pods pull with keel-registry; the worker copies it into team namespaces.
      for (const d of [webDeployment, worker]) expect(d.template.spec.imagePullSecrets).toEqual([{ name: "keel-registry" }]);
      expect(config.KEEL_SANDBOX_IMAGE_PULL_SECRETS).toBe("keel-registry");
      const role = find(objs, "Role", "keel-image-pull-secrets")!;
      expect((role as any).rules[0].resourceNames).toEqual(["keel-registry"]);
    }

    // Server-side dry run needs the target namespace to exist: apply the overlay moved into a
    // fresh namespace (names suffixed so cluster-scoped RBAC cannot collide with anything).
    const ns = await namespace(`kz-${overlay}`);
    const wrapped = retargetedOverlay(overlay, ns, "dry");
    cleanups.push(wrapped.cleanup);
    const res = await kubectl(["apply", "--server-side", "--dry-run=server", "-k", wrapped.dir]);
    expect(res.stdout).toMatch(/deployment.apps\/keel-worker-dry serverside-applied \(server dry run\)/);
    expect(res.stdout).toMatch(/clusterrole.rbac.authorization.k8s.io\/keel-platform-dry serverside-applied/);
  }, 120_000);
}

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
/** A label selector as the API server evaluates it (an empty selector selects everything). */
function selects(sel: Selector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  const labelsOk = Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return (
    labelsOk &&
    (sel.matchExpressions ?? []).every((e) => {
      switch (e.operator) {
        case "In":
          return e.key in labels && e.values!.includes(labels[e.key]!);
        case "NotIn":
          return !(e.key in labels) || !e.values!.includes(labels[e.key]!);
        case "Exists":
          return e.key in labels;
        case "DoesNotExist":
          return !(e.key in labels);
        default:
          throw new Error(`unknown selector operator ${e.operator}`);
      }
    })
  );
}

/** Every rule the namespace's policies give a pod with `labels`, per direction, and whether any policy isolates it that way. */
function rulesFor(policies: Obj[], labels: Record<string, string>) {
  const mine = policies.filter((p) => selects(p.spec.podSelector, labels));
  const of = (type: "Ingress" | "Egress", key: "ingress" | "egress") => ({
    isolated: mine.some((p) => p.spec.policyTypes.includes(type)),
    rules: mine
      .filter((p) => p.spec.policyTypes.includes(type))
      // loadAllYaml's typed models call an ingress rule's `from` `_from`.
      .flatMap((p) => (p.spec[key] ?? []).map(({ _from, ...r }: any) => ({ policy: p.metadata.name, ...r, ...(_from ? { from: _from } : {}) }))),
  });
  return { ingress: of("Ingress", "ingress"), egress: of("Egress", "egress") };
}

for (const overlay of ["kind", "production"]) {
  test(`overlay ${overlay}: the platform namespace's NetworkPolicies deny by default and allow each path Keel uses, and no other`, async () => {
    await startControlPlane();
    const objs = await render(`${repoRoot}/k8s/overlays/${overlay}`);
    const policies = objs.filter((o) => o.kind === "NetworkPolicy");
    const labelsOf = (name: string) => find(objs, "Deployment", name)!.spec.template.metadata.labels as Record<string, string>;
    const web = labelsOf("keel-web");
    const worker = labelsOf("keel-worker");
    // The sandbox templates admit pods with the driver's worker labels: the worker pods carry them,
    // and learn their namespace from the downward API (not a hard-coded `keel`).
    expect(worker).toMatchObject(WORKER_POD_LABELS);
    const workerSpec = find(objs, "Deployment", "keel-worker")!.spec.template.spec;
    expect(workerSpec.containers[0].env).toContainEqual({
      name: "KEEL_SANDBOX_WORKERS_NAMESPACE",
      valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
    });

    // Default deny: every pod of the namespace is isolated both ways; one with no Keel labels gets nothing.
    expect(find(objs, "NetworkPolicy", "keel-default-deny")!.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    const stranger = rulesFor(policies, { app: "debug" });
    expect(stranger).toEqual({ ingress: { isolated: true, rules: [] }, egress: { isolated: true, rules: [] } });

    const dns = {
      policy: "keel-dns",
      to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
      ports: [
        { protocol: "UDP", port: 53 },
        { protocol: "TCP", port: 53 },
      ],
    };
    const postgres = [
      { policy: "keel-database", to: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "postgres" } } }], ports: [{ protocol: "TCP", port: 5432 }] },
      // Production: the documentation address the operator replaces with the database's.
      ...(overlay === "production"
        ? [{ policy: "keel-database", to: [{ ipBlock: { cidr: "192.0.2.10/32" } }], ports: [{ protocol: "TCP", port: 5432 }] }]
        : []),
    ];
    // The web: port 3000 from anywhere; out only to DNS and Postgres (no API server, sandbox or model).
    expect(rulesFor(policies, web).ingress.rules).toEqual([{ policy: "keel-web-ingress", ports: [{ protocol: "TCP", port: 3000 }] }]);
    expect(rulesFor(policies, web).egress.rules).toEqual(expect.arrayContaining([dns, ...postgres]));
    expect(rulesFor(policies, web).egress.rules).toHaveLength(1 + postgres.length);
    // The worker: only its metrics port in; out to DNS, Postgres, the API server, sandbox runtimes and HTTPS outside the internal ranges.
    const w = rulesFor(policies, worker);
    expect(w.ingress).toEqual({ isolated: true, rules: [{ policy: "keel-worker-metrics", ports: [{ protocol: "TCP", port: 9464 }] }] });
    const byPolicy = (name: string) => w.egress.rules.filter((r: any) => r.policy === name).map(({ policy: _, ...r }: any) => r);
    expect(new Set(w.egress.rules.map((r: any) => r.policy))).toEqual(
      new Set(["keel-dns", "keel-database", "keel-kube-api", "keel-sandboxes", "keel-outbound"]),
    );
    expect(w.egress.rules).toEqual(expect.arrayContaining([dns, ...postgres]));
    expect(byPolicy("keel-kube-api")).toEqual([{ ports: [{ protocol: "TCP", port: 6443 }] }]);
    // Sandboxes: the runtime port, in the namespaces the driver creates (their labels), on the pods it templates.
    const [sandboxes, ...more] = byPolicy("keel-sandboxes");
    expect(more).toEqual([]);
    expect(sandboxes.ports).toEqual([{ protocol: "TCP", port: RUNTIME_PORT }]);
    const team = namespaceObject("keel-team-t1", "t1");
    const template = templateObject(
      "keel-team-t1",
      "default",
      "t1",
      parseSandboxPolicy({}),
      { image: "x", runtimePort: RUNTIME_PORT, cpu: "1", workers: { namespace: "keel", podLabels: { ...WORKER_POD_LABELS } } },
      "h",
    );
    expect(selects(sandboxes.to[0].namespaceSelector, team.metadata.labels!)).toBe(true);
    expect(selects(sandboxes.to[0].podSelector, template.spec.podTemplate.metadata.labels)).toBe(true);
    expect(selects(sandboxes.to[0].namespaceSelector, { "kubernetes.io/metadata.name": "kube-system" })).toBe(false);
    expect(selects(sandboxes.to[0].namespaceSelector, { "app.kubernetes.io/managed-by": "keel" })).toBe(false);
    // Model providers and MCP servers: 443 to everything but the internal ranges, exactly the
    // carve-outs the sandbox rules make from sandbox/src/internal-addresses.ts.
    expect(byPolicy("keel-outbound")).toEqual(egressRules({ allow: ["0.0.0.0/0:443", "[::/0]:443"] } as Parameters<typeof egressRules>[0]));

    if (overlay === "kind") {
      // The in-cluster Postgres: in only from web and worker pods (their migrate init containers
      // are the same pods) on 5432; nothing out.
      const pgLabels = find(objs, "StatefulSet", "postgres")!.spec.template.metadata.labels;
      const pg = rulesFor(policies, pgLabels);
      expect(pg.egress).toEqual({ isolated: true, rules: [] });
      expect(pg.ingress.rules).toHaveLength(1);
      const [rule] = pg.ingress.rules;
      expect(rule.ports).toEqual([{ protocol: "TCP", port: 5432 }]);
      expect(rule.from).toHaveLength(1);
      expect(rule.from[0].namespaceSelector).toBeUndefined(); // this namespace only
      for (const [who, labels, admitted] of [
        ["web", web, true],
        ["worker", worker, true],
        ["a pod without Keel's labels", { app: "debug" }, false],
        ["a Keel pod of another component", { "app.kubernetes.io/name": "keel", "app.kubernetes.io/component": "debug" }, false],
      ] as const)
        expect({ who, admitted: selects(rule.from[0].podSelector, labels) }).toEqual({ who, admitted });
    }

    // The admission policy names the platform ServiceAccount with its namespace: an overlay that
    // moves the namespace must change it too, or the policy matches nobody (k8s/README.md).
    const sa = find(objs, "ServiceAccount", "keel-platform")!;
    const vap = find(objs, "ValidatingAdmissionPolicy", "keel-platform-confinement")!;
    expect(vap.spec.matchConditions[0].expression).toContain(`'system:serviceaccount:${sa.metadata.namespace}:keel-platform'`);
  }, 120_000);
}

test("production: one `kustomize edit set image` per image moves the Deployments and KEEL_SANDBOX_IMAGE together", async () => {
  await startControlPlane();
  // What `kustomize edit set image keel=... keel-sandbox=...` writes: the overlay's images entries.
  const dir = path.join(repoRoot, ".tmp", `k8s-setimage-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const overlay = readFileSync(path.join(repoRoot, "k8s/overlays/production/kustomization.yaml"), "utf8")
    .replace("../../base", path.relative(dir, path.join(repoRoot, "k8s/base")))
    .replace(/- name: keel\n\s+newName: .*\n\s+newTag: .*\n/, '- name: keel\n    newName: registry.example/acme/keel\n    newTag: "2.0.0"\n')
    .replace(
      /- name: keel-sandbox\n\s+newName: .*\n\s+newTag: .*\n/,
      '- name: keel-sandbox\n    newName: registry.example/acme/keel-sandbox\n    newTag: "2.0.0"\n',
    );
  writeFileSync(path.join(dir, "kustomization.yaml"), overlay);
  const objs = await render(dir);
  const images = objs
    .filter((o) => o.kind === "Deployment")
    .flatMap((d) => [...(d.spec.template.spec.initContainers ?? []), ...d.spec.template.spec.containers].map((c: any) => c.image));
  expect(new Set(images)).toEqual(new Set(["registry.example/acme/keel:2.0.0"]));
  expect(find(objs, "ConfigMap", "keel-config")!.data!.KEEL_SANDBOX_IMAGE).toBe("registry.example/acme/keel-sandbox:2.0.0");
});

test("k8s/agent-sandbox/<version>/ is what generate.sh makes from the pinned module, and is the version the driver names", async () => {
  await startControlPlane();
  const r = spawnSync("bash", [path.join(repoRoot, "k8s/agent-sandbox/generate.sh"), "--check"], {
    encoding: "utf8",
    env: { ...process.env, KUBECTL: path.join(repoRoot, "controlplane/.bin/kubectl") },
  });
  expect(r.stderr + r.stdout).toContain(`k8s/agent-sandbox/${AGENT_SANDBOX_VERSION} is current`);
  expect(r.status).toBe(0);
  const objs = await render(path.join(repoRoot, "k8s/agent-sandbox", AGENT_SANDBOX_VERSION));
  expect(
    objs
      .filter((o) => o.kind === "CustomResourceDefinition")
      .map((o) => o.metadata.name)
      .sort(),
  ).toEqual([
    "sandboxclaims.extensions.agents.x-k8s.io",
    "sandboxes.agents.x-k8s.io",
    "sandboxtemplates.extensions.agents.x-k8s.io",
    "sandboxwarmpools.extensions.agents.x-k8s.io",
  ]);
  const controller = find(objs, "Deployment", "agent-sandbox-controller")!.spec.template.spec.containers[0];
  expect(controller.image).toBe(`registry.k8s.io/agent-sandbox/agent-sandbox-controller:${AGENT_SANDBOX_VERSION}`);
  expect(controller.args).toContain("--extensions");
  // v1.0 serves v1beta1 only: no conversion webhook left to reach.
  for (const crd of objs.filter((o) => o.kind === "CustomResourceDefinition")) expect(crd.spec.versions.map((v: any) => v.name)).toEqual(["v1beta1"]);
}, 120_000);

// Every call core/src/sandbox/k8s/driver.ts makes, by resource.
const NEEDED: [verb: string, resource: string][] = [
  ["get", "namespaces"],
  ["create", "namespaces"],
  ["patch", "namespaces"],
  // The reaper removes a deleted team's namespace (admission.yaml: keel-team-* only).
  ["list", "namespaces"],
  ["delete", "namespaces"],
  ["create", "secrets"],
  ["patch", "secrets"],
  ["get", "sandboxtemplates.extensions.agents.x-k8s.io"],
  ["create", "sandboxtemplates.extensions.agents.x-k8s.io"],
  ["patch", "sandboxtemplates.extensions.agents.x-k8s.io"],
  ["get", "sandboxwarmpools.extensions.agents.x-k8s.io"],
  ["create", "sandboxwarmpools.extensions.agents.x-k8s.io"],
  ["patch", "sandboxwarmpools.extensions.agents.x-k8s.io"],
  ["get", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["list", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["watch", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["create", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["delete", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["get", "sandboxes.agents.x-k8s.io"],
  ["list", "sandboxes.agents.x-k8s.io"],
  ["watch", "sandboxes.agents.x-k8s.io"],
  ["patch", "sandboxes.agents.x-k8s.io"],
  ["create", "resourcequotas"],
  ["patch", "resourcequotas"],
  ["create", "limitranges"],
  ["patch", "limitranges"],
];
const FORBIDDEN: [verb: string, resource: string][] = [
  ["get", "pods"],
  ["list", "pods"],
  ["get", "secrets"],
  ["list", "secrets"],
  ["delete", "secrets"],
  ["create", "pods"],
  ["delete", "pods"],
  ["create", "pods/exec"],
  ["create", "networkpolicies.networking.k8s.io"],
  ["delete", "sandboxtemplates.extensions.agents.x-k8s.io"],
  ["create", "sandboxes.agents.x-k8s.io"],
  ["delete", "sandboxes.agents.x-k8s.io"],
  ["list", "nodes"],
  ["create", "clusterrolebindings.rbac.authorization.k8s.io"],
  ["create", "rolebindings.rbac.authorization.k8s.io"],
  ["patch", "deployments.apps"],
  ["create", "customresourcedefinitions.apiextensions.k8s.io"],
  ["impersonate", "serviceaccounts"],
  // Its limits can be set, never removed; and it cannot make itself a higher priority.
  ["delete", "resourcequotas"],
  ["delete", "limitranges"],
  ["create", "priorityclasses.scheduling.k8s.io"],
  ["patch", "priorityclasses.scheduling.k8s.io"],
];

test("RBAC: the platform ServiceAccount can do what the driver needs, and a sample of what it must not", async () => {
  await startControlPlane();
  const ns = await namespace("kz-rbac");
  const platform: PlatformIdentity = await applyPlatformRbac(ns, "keel-team-");
  cleanups.push(platform.cleanup);
  const as = `--as=system:serviceaccount:${ns}:${platform.serviceAccount}`;
  // Checked in another namespace than the platform's own: the driver works in per-team namespaces.
  const canI = async ([verb, resource]: [string, string], where = "keel-team-example") =>
    (await kubectl(["auth", "can-i", verb, resource, "-n", where, as], { allowFailure: true })).stdout.trim();
  await waitFor(async () => (await canI(["get", "sandboxclaims.extensions.agents.x-k8s.io"])) === "yes", {
    timeoutMs: 30_000,
    what: "the ClusterRoleBinding to take effect",
  });
  const answers = async (list: [string, string][]) => Object.fromEntries(await Promise.all(list.map(async (v) => [v.join(" "), await canI(v)])));
  expect(await answers(NEEDED)).toEqual(Object.fromEntries(NEEDED.map((v) => [v.join(" "), "yes"])));
  expect(await answers(FORBIDDEN)).toEqual(Object.fromEntries(FORBIDDEN.map((v) => [v.join(" "), "no"])));
  // Secrets are readable only in the platform's own namespace, and only the image pull Secret.
  const pullSecret = `keel-registry`;
  expect(await canI(["get", `secrets/${pullSecret}`], ns)).toBe("yes");
  expect(await canI(["get", "secrets/keel-secrets"], ns)).toBe("no");
  expect(await canI(["list", "secrets"], ns)).toBe("no");
  expect(await canI(["get", `secrets/${pullSecret}`])).toBe("no");
}, 120_000);

// What the session view's file list would need if the web read sandboxes itself, and more. It
// needs none of it: a worker reads files and starts sandboxes for it (core/src/sandbox/relay.ts).
const WEB_FORBIDDEN: [verb: string, resource: string][] = [
  ["get", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["list", "sandboxclaims.extensions.agents.x-k8s.io"],
  ["get", "sandboxes.agents.x-k8s.io"],
  ["get", "sandboxtemplates.extensions.agents.x-k8s.io"],
  ["get", "pods"],
  ["list", "pods"],
  ["create", "pods"],
  ["create", "pods/exec"],
  ["create", "pods/portforward"],
  ["get", "pods/proxy"],
  ["get", "secrets"],
  ["list", "secrets"],
  ["get", "configmaps"],
  ["create", "serviceaccounts/token"],
  ["list", "namespaces"],
];

test("RBAC: the web ServiceAccount can do nothing in the API, in team namespaces, its own or kube-system (no token is mounted either)", async () => {
  await startControlPlane();
  const ns = await namespace("kz-web");
  const platform: PlatformIdentity = await applyPlatformRbac(ns, "keel-team-");
  cleanups.push(platform.cleanup);
  const as = `--as=system:serviceaccount:${ns}:keel-web-${platform.serviceAccount.split("-").pop()}`;
  // The platform's binding taking effect is the sign that the RBAC objects applied above are live.
  await waitFor(
    async () =>
      (
        await kubectl(
          [
            "auth",
            "can-i",
            "get",
            "sandboxclaims.extensions.agents.x-k8s.io",
            "-n",
            "keel-team-example",
            `--as=system:serviceaccount:${ns}:${platform.serviceAccount}`,
          ],
          {
            allowFailure: true,
          },
        )
      ).stdout.trim() === "yes",
    { timeoutMs: 30_000, what: "the ClusterRoleBinding to take effect" },
  );
  for (const where of ["keel-team-example", ns, "kube-system"]) {
    const answers = Object.fromEntries(
      await Promise.all(
        WEB_FORBIDDEN.map(async ([verb, res]) => [
          `${verb} ${res}`,
          (await kubectl(["auth", "can-i", verb, res, "-n", where, as], { allowFailure: true })).stdout.trim(),
        ]),
      ),
    );
    expect({ where, answers }).toEqual({ where, answers: Object.fromEntries(WEB_FORBIDDEN.map((v) => [v.join(" "), "no"])) });
    // Every resource rule it has is one any authenticated caller has (asking what it may do).
    const list = (await kubectl(["auth", "can-i", "--list", "-n", where, as])).stdout
      .split("\n")
      .slice(1)
      .map((l) => l.split(/\s+/)[0])
      .filter(Boolean);
    expect({ where, resources: list.sort() }).toEqual({
      where,
      resources: ["selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectreviews.authentication.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io"],
    });
  }
  // And the web pods carry no token to try with.
  const web = (loadAllYaml((await kubectl(["kustomize", path.join(repoRoot, "k8s/overlays/production")])).stdout) as Obj[]).find(
    (o) => o.kind === "Deployment" && o.metadata.name === "keel-web",
  )!;
  expect(web.spec.template.spec.automountServiceAccountToken).toBe(false);
}, 120_000);
