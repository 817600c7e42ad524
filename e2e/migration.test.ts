// A release whose migration fails, rolled out the way an operator would (`kubectl set image`):
// the new web pod's migrate init container fails (the reason in its log), is retried by the
// kubelet and never lets the pod become Ready; with maxUnavailable 0 the old pod keeps serving,
// so the dashboard and the API answer 200 all along; the failed migration is rolled back whole
// (no half-applied column, no bookkeeping row); `kubectl rollout undo` leaves a healthy Deployment.
// The image is keel:dev (whatever the Deployment runs) plus e2e/broken-migration/migration.sql.
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Api, BASE_URL, CONTEXT, kubectl, kubectlJson, repoRoot, run, waitFor } from "./kind.ts";

const BROKEN = "keel:broken-migration";
const MIGRATION = "99991231000000_e2e_broken";
const CLUSTER = CONTEXT.replace(/^kind-/, "");

let api: Api;
let original: Record<string, string> = {};

/** The web Deployment's images by container name (init containers included). */
function webImages(): Record<string, string> {
  const spec = kubectlJson(["-n", "keel", "get", "deployment", "keel-web"]).spec.template.spec;
  return Object.fromEntries([...(spec.initContainers ?? []), ...spec.containers].map((c: any) => [c.name, c.image]));
}

function webPods(): any[] {
  return kubectlJson<{ items: any[] }>(["-n", "keel", "get", "pods", "-l", "app.kubernetes.io/component=web"]).items.filter(
    (p) => !p.metadata.deletionTimestamp,
  );
}

const ready = (p: any) => (p.status.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True");

/** One query in the kind overlay's Postgres, as its own user (read-only checks). */
function psql(sql: string): string {
  return kubectl(
    [
      "-n",
      "keel",
      "exec",
      "-i",
      "postgres-0",
      "--",
      "sh",
      "-c",
      'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tA -v ON_ERROR_STOP=1',
    ],
    { input: sql },
  ).stdout.trim();
}

beforeAll(async () => {
  api = await Api.login();
  original = webImages();
  run("docker", ["build", "-q", "--build-arg", `BASE=${original.web}`, "-t", BROKEN, path.join(repoRoot, "e2e/broken-migration")]);
  run("kind", ["load", "docker-image", BROKEN, "--name", CLUSTER]);
});

afterAll(() => {
  // Whatever happened above, the Deployment runs the images it ran before.
  if (Object.keys(original).length && JSON.stringify(webImages()) !== JSON.stringify(original)) {
    kubectl(["-n", "keel", "set", "image", "deployment/keel-web", ...Object.entries(original).map(([c, i]) => `${c}=${i}`)]);
    kubectl(["-n", "keel", "rollout", "status", "deployment/keel-web", "--timeout=300s"], { allowFail: true });
  }
});

test("a release with a failing migration: new web pod stays unready with the reason in its log, the old one serves throughout, rollout undo is healthy", async () => {
  const oldPods = webPods()
    .filter(ready)
    .map((p) => p.metadata.name as string);
  expect(oldPods.length).toBeGreaterThan(0);

  // Dashboard, API and readiness, asked over and over through the NodePort until the rollback is done.
  const answers: { path: string; status: number }[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      for (const p of ["/login", "/api/v1/sessions?limit=1", "/readyz"]) {
        const r = await fetch(`${BASE_URL}${p}`, { headers: p.startsWith("/api/") ? api.authHeaders : {}, redirect: "manual" }).then(
          (r) => r.status,
          () => -1,
        );
        answers.push({ path: p, status: r });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  kubectl(["-n", "keel", "set", "image", "deployment/keel-web", `migrate=${BROKEN}`, `web=${BROKEN}`]);
  // The new pod's migrate init container has failed, and the kubelet has retried it and it failed again.
  const broken = await waitFor(
    () =>
      webPods().find((p) => {
        if (p.spec.initContainers[0].image !== BROKEN) return false;
        const s = (p.status.initContainerStatuses ?? [])[0];
        return s && s.restartCount >= 2 && (s.lastState?.terminated?.exitCode ?? 0) !== 0 ? p : null;
      }),
    { what: "the new web pod's migrate init container to fail twice", timeoutMs: 240_000 },
  );
  const now = webPods();
  expect(ready(now.find((p) => p.metadata.name === broken.metadata.name))).toBe(false);
  expect(
    now
      .filter(ready)
      .map((p) => p.metadata.name)
      .sort(),
  ).toEqual([...oldPods].sort());
  const dep = kubectlJson(["-n", "keel", "get", "deployment", "keel-web"]).status;
  expect(dep.availableReplicas).toBe(oldPods.length);
  expect(dep.unavailableReplicas ?? 0).toBeGreaterThan(0);

  // The reason is in the init container's log (the last failed run's).
  const log = await waitFor(
    () => {
      for (const prev of [[], ["--previous"]]) {
        const r = kubectl(["-n", "keel", "logs", broken.metadata.name, "-c", "migrate", ...prev], { allowFail: true });
        if (r.stdout.includes(MIGRATION)) return r.stdout + r.stderr;
      }
      return null;
    },
    { what: "the migrate container's log" },
  );
  expect(log).toContain(`keel migrate: migration ${MIGRATION} failed and was rolled back: relation "e2e_no_such_table" does not exist`);
  // Rolled back whole: the statement before the failing one left nothing, and nothing was recorded.
  expect(psql(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'sessions' AND column_name = 'e2e_broken_migration'`)).toBe("0");
  expect(psql(`SELECT count(*) FROM "_prisma_migrations" WHERE migration_name = '${MIGRATION}'`)).toBe("0");

  kubectl(["-n", "keel", "rollout", "undo", "deployment/keel-web"]);
  kubectl(["-n", "keel", "rollout", "status", "deployment/keel-web", "--timeout=300s"]);
  expect(webImages()).toEqual(original);
  await waitFor(() => webPods().every((p) => p.spec.containers[0].image !== BROKEN) && webPods().every(ready), { what: "the broken pod to go" });
  polling = false;
  await poller;

  const bad = answers.filter((a) => a.status !== 200);
  expect(bad).toEqual([]);
  for (const p of ["/login", "/api/v1/sessions?limit=1", "/readyz"]) expect(answers.filter((a) => a.path === p).length).toBeGreaterThan(10);
}, 900_000);
