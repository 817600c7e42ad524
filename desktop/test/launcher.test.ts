// The one-click kind launcher against stub docker, kind and kubectl executables (first on PATH,
// test/fixtures/kind-stub.sh) that record their arguments and can be told to fail or hang at any
// command. The steps are the real kind/up.sh's; only the three tools are stand-ins (no container
// engine on these machines).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, expect, test } from "vitest";
import { freePort } from "@keel/cli/embedded-postgres";
import { waitFor } from "./control-plane.ts";
import { checkoutKindScript, KindLauncher } from "../src/main/launcher/launcher.ts";
import { processStat } from "../src/main/launcher/process.ts";
import { createMainServices } from "../src/main/ipc.ts";
import { ipcClient, kindStubBin } from "./helpers.ts";
import { launcherSteps, type EventName, type LauncherLogLine, type LauncherState } from "../src/shared/contract.ts";

const root = path.resolve(import.meta.dirname, "../..");
const tmp = mkdtempSync(path.join(os.tmpdir(), "keel-launcher-"));
const launchers: KindLauncher[] = [];
afterEach(async () => {
  for (const l of launchers.splice(0)) await l.dispose();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A PATH with only the utilities kind/up.sh and the stub use, plus the stub tools asked for. */
function sandbox(name: string, tools: ("docker" | "kind" | "kubectl")[] = ["docker", "kind", "kubectl"]) {
  const dir = path.join(tmp, name);
  const bin = path.join(dir, "bin");
  const state = path.join(dir, "state");
  kindStubBin(bin, tools);
  mkdirSync(state, { recursive: true });
  const env = { PATH: bin, HOME: dir, STUB_STATE: state } as unknown as NodeJS.ProcessEnv;
  const file = (f: string) => (existsSync(path.join(state, f)) ? readFileSync(path.join(state, f), "utf8") : "");
  return {
    env,
    state,
    calls: () => file("calls").split("\n").filter(Boolean),
    control: (lines: string[]) => writeFileSync(path.join(state, "control"), lines.join("\n") + "\n"),
    pids: (f = "pids") => file(f).split(/\s+/).filter(Boolean).map(Number),
  };
}

async function launcher(env: NodeJS.ProcessEnv, opts: { graceMs?: number; port?: number } = {}) {
  const events: { name: EventName; payload: any }[] = [];
  const l = new KindLauncher({
    env,
    port: opts.port ?? (await freePort()),
    graceMs: opts.graceMs ?? 2_000,
    emit: (name, payload) => events.push({ name, payload }),
  });
  launchers.push(l);
  const states = () => events.filter((e) => e.name === "launcher:changed").map((e) => e.payload as LauncherState);
  const logs = () => events.filter((e) => e.name === "launcher:log").map((e) => e.payload as LauncherLogLine);
  return { l, events, states, logs };
}

const stepStates = (s: LauncherState) => Object.fromEntries(s.steps.map((x) => [x.name, x.state]));
/** Live processes only: a zombie waiting for init to reap it counts as gone. */
const alive = (pid: number) => {
  const s = processStat(pid);
  return s !== null && s.state !== "Z" && s.state !== "X";
};

test("the launcher's steps are kind/up.sh's, in the same order", () => {
  const script = checkoutKindScript()!;
  const r = spawnSync("bash", [script, "--list-steps"], { encoding: "utf8" });
  expect(r.status).toBe(0);
  expect(r.stdout.trim().split("\n")).toEqual([...launcherSteps]);
  expect(script).toBe(path.join(root, "kind/up.sh"));
});

test("a run calls the tools in the steps' order, streams logs, reports each step and the dashboard URL", async () => {
  const s = sandbox("order");
  const port = await freePort();
  const { l, states, logs } = await launcher(s.env, { port });
  await l.start();
  const end = await waitFor(() => (l.state().status === "running" ? undefined : l.state()), { what: "the run to end" });
  expect(end).toMatchObject({ status: "succeeded", dashboardUrl: `http://localhost:${port}`, context: "kind-keel", error: null });
  expect(Object.values(stepStates(end))).toEqual(Array(launcherSteps.length).fill("done"));
  for (const step of end.steps) expect(step.elapsedMs).toBeGreaterThanOrEqual(0);

  const k = "kubectl --context kind-keel";
  const controller = "registry.k8s.io/agent-sandbox/agent-sandbox-controller:v1.0.1";
  const expected = [
    /^docker info --format \{\{\.MemTotal\}\}$/,
    /^kind get clusters$/,
    /^docker image inspect keel\.local\/kind-node:v1\.36\.3$/,
    // Another port than 3000: a copy of kind/cluster.yaml with that host port.
    /^kind create cluster --name keel --config \S+\/keel-kind-keel-cluster\.yaml --wait 180s$/,
    new RegExp(`^${k} get namespace agent-sandbox-system `),
    `docker image inspect ${controller}`,
    `docker pull ${controller}`,
    `kind load docker-image ${controller} --name keel`,
    new RegExp(`^${k} apply --server-side --force-conflicts -k ${root}/k8s/agent-sandbox/v1.0.1$`),
    new RegExp(`^${k} -n agent-sandbox-system rollout status deployment/agent-sandbox-controller`),
    new RegExp(`^${k} wait --for=condition=Established .*crd/sandboxes.agents.x-k8s.io`),
    new RegExp(`^${k} annotate --overwrite namespace agent-sandbox-system keel.dev/agent-sandbox-version=v1.0.1$`),
    /^docker image inspect keel:dev$/,
    /^docker image inspect node:24-bookworm-slim$/,
    /^docker pull node:24-bookworm-slim$/,
    /^docker image inspect postgres:15-bookworm$/,
    /^docker pull postgres:15-bookworm$/,
    new RegExp(`^docker build --label keel.source= --target sandbox -t keel-sandbox:dev ${root}$`),
    new RegExp(`^docker build --label keel.source= -t keel:dev ${root}$`),
    /^docker image ls /,
    /^docker image inspect postgres:15-bookworm$/,
    /^kind load docker-image keel:dev --name keel$/,
    /^kind load docker-image keel-sandbox:dev --name keel$/,
    /^kind load docker-image postgres:15-bookworm --name keel$/,
    new RegExp(`^${k} get namespace keel$`),
    new RegExp(`^${k} -n keel get secret keel-admin$`),
    // The overlay with the built image's ID stamped on the pod templates (a same-tag rebuild rolls the pods).
    /^docker image inspect -f \{\{\.Id\}\} keel:dev$/,
    new RegExp(`^${k} diff --server-side -k \\S+/keel-kind-apply\\.\\w+$`),
    new RegExp(`^${k} apply --server-side -k \\S+/keel-kind-apply\\.\\w+$`),
    new RegExp(`^${k} -n keel rollout status statefulset/postgres`),
    new RegExp(`^${k} -n keel rollout status deployment/keel-web`),
    new RegExp(`^${k} -n keel rollout status deployment/keel-worker`),
    // Replaced web pods still answering 503 through their shutdown delay: waited for when there are any.
    new RegExp(`^${k} -n keel get pods -l app.kubernetes.io/component=web -o jsonpath=`),
    new RegExp(`^${k} -n keel get secret keel-admin -o jsonpath=\\{\\.data\\.KEEL_ADMIN_EMAIL\\}$`),
    new RegExp(`^${k} -n keel get secret keel-admin -o jsonpath=\\{\\.data\\.KEEL_ADMIN_PASSWORD\\}$`),
    new RegExp(`^${k} -n keel get service keel-web-nodeport$`),
    /^docker port keel-control-plane 30300\/tcp$/,
    // The stub cluster publishes no port: the step falls back to forwarding.
    new RegExp(`^${k} -n keel port-forward svc/keel-web ${port}:3000$`),
  ];
  const calls = s.calls();
  expect(calls).toHaveLength(expected.length);
  calls.forEach((c, i) => expect(c).toMatch(expected[i]!));

  // Events: every step went running → done in order; log lines arrived tagged with their step.
  const seen = states().flatMap((st) => st.steps.filter((x) => x.state === "running").map((x) => x.name));
  expect([...new Set(seen)]).toEqual([...launcherSteps]);
  expect(logs().find((x) => x.step === "cluster" && /Creating cluster "keel"/.test(x.line))).toBeTruthy();
  expect(logs().find((x) => x.step === "prereqs" && /^ok: port \d+ is free/.test(x.line))).toBeTruthy();
  expect(l.logLines("build").map((x) => x.line)).toContain("Successfully built stub");
});

test("a second run on the existing cluster skips every change and runs no mutating command", async () => {
  const s = sandbox("again");
  const { l } = await launcher(s.env);
  await l.start();
  expect((await l.settled()).status).toBe("succeeded");
  const first = s.calls().length;
  await l.start();
  const end = await l.settled();
  expect(end.status).toBe("succeeded");
  expect(stepStates(end)).toEqual({
    prereqs: "done",
    cluster: "skipped",
    "agent-sandbox": "skipped",
    build: "skipped",
    load: "skipped",
    apply: "skipped",
    rollout: "done",
    "port-forward": "done",
  });
  expect(end.steps.find((x) => x.name === "apply")!.message).toBe("k8s/overlays/kind is applied and unchanged, and the pods run keel:dev as built");
  const second = s.calls().slice(first);
  expect(second.filter((c) => / create | build | apply | annotate /.test(` ${c} `))).toEqual([]);
  expect(second.some((c) => c.startsWith("kind load docker-image"))).toBe(true); // kind itself skips it
  // The first run's port-forward was stopped before the second started its own.
  const forwards = s.pids("forward-pids");
  expect(forwards).toHaveLength(4);
  expect(forwards.slice(0, 2).filter(alive)).toEqual([]);
  expect(forwards.slice(2).every(alive)).toBe(true);
});

test("a failed step stops the run with the tool's message; retry continues at that step", async () => {
  const s = sandbox("retry");
  s.control(["fail kubectl * apply --server-side -k *"]);
  const { l } = await launcher(s.env);
  await l.start();
  const failed = await l.settled();
  expect(failed.status).toBe("failed");
  expect(stepStates(failed)).toMatchObject({ load: "done", apply: "failed", rollout: "pending", "port-forward": "pending" });
  expect(failed.error).toEqual({
    step: "apply",
    message: expect.stringMatching(/^stub: 'kubectl --context kind-keel apply --server-side -k .*' failed as told \(apply: exit code 1\)$/),
  });

  s.control([]);
  const before = s.calls().length;
  const retried = await l.retry();
  expect(retried.runId).toBe(failed.runId + 1);
  const end = await l.settled();
  expect(end.status).toBe("succeeded");
  const after = s.calls().slice(before);
  expect(after[0]).toBe("kubectl --context kind-keel get namespace keel"); // the apply step, not the cluster step again
  // (apply reads the image's ID to stamp it, the port-forward step asks docker which host port the
  // node publishes; nothing else of docker or kind)
  expect(after.filter((c) => c.startsWith("kind ") || (c.startsWith("docker ") && !c.startsWith("docker port ")))).toEqual([
    "docker image inspect -f {{.Id}} keel:dev",
  ]);
  expect(stepStates(end)).toMatchObject({ cluster: "done", apply: "done", "port-forward": "done" });
  await expect(l.retry()).rejects.toThrow(/nothing to retry: the local environment is succeeded/);
});

test.each([
  ["hang", 2_000],
  ["hang-hard", 300], // ignores SIGTERM: only the SIGKILL after the grace period ends it
])("cancel (%s) kills the step's whole process tree; retry starts at the cancelled step", async (mode, graceMs) => {
  const s = sandbox(`cancel-${mode}`);
  s.control([`${mode} kind create cluster *`]);
  const { l } = await launcher(s.env, { graceMs });
  await l.start();
  const pids = await waitFor(() => (s.pids().length === 2 ? s.pids() : undefined), { what: "the hung kind and its child" });
  expect(pids.every(alive)).toBe(true);
  await expect(l.start()).rejects.toThrow(/cannot start: the local environment is being set up; cancel it or wait/);

  const cancelled = await l.cancel();
  expect(cancelled.status).toBe("cancelled");
  expect(stepStates(cancelled)).toMatchObject({ prereqs: "done", cluster: "cancelled", "agent-sandbox": "pending" });
  expect(pids.filter(alive)).toEqual([]);

  s.control([]);
  const before = s.calls().length;
  await l.retry();
  expect((await l.settled()).status).toBe("succeeded");
  expect(s.calls()[before]).toBe("kind get clusters");
});

test("tear down stops the port-forward and deletes the cluster", async () => {
  const s = sandbox("down");
  const { l } = await launcher(s.env);
  await l.start();
  expect((await l.settled()).status).toBe("succeeded");
  const forward = s.pids("forward-pids");
  expect(forward).toHaveLength(2);
  expect(forward.every(alive)).toBe(true);
  const down = await l.teardown();
  expect(down).toMatchObject({ status: "torn-down", dashboardUrl: null, error: null });
  expect(forward.filter(alive)).toEqual([]);
  expect(s.calls().at(-1)).toBe("kind delete cluster --name keel");
  expect(l.logLines("teardown").map((x) => x.line)).toContain("Deleting cluster ...");
  // And a start after it creates the cluster again.
  await l.start();
  expect((await l.settled()).status).toBe("succeeded");
  expect(s.calls().filter((c) => c.startsWith("kind create cluster"))).toHaveLength(2);
});

test("a port-forward that dies later marks the run failed, and retry forwards again", async () => {
  const s = sandbox("pf-dies");
  const { l } = await launcher(s.env);
  await l.start();
  expect((await l.settled()).status).toBe("succeeded");
  process.kill(s.pids("forward-pids")[0]!, "SIGKILL"); // the sleep: kubectl port-forward's stand-in exits
  const failed = await waitFor(() => (l.state().status === "failed" ? l.state() : undefined), { what: "the run to notice" });
  expect(failed).toMatchObject({
    dashboardUrl: null,
    error: { step: "port-forward", message: expect.stringMatching(/no longer forwarded: retry to forward it again$/) },
  });
  await l.retry();
  expect(await l.settled()).toMatchObject({ status: "succeeded", dashboardUrl: expect.stringMatching(/^http:\/\/localhost:\d+$/) });
});

test("prerequisites: every missing tool at once, each with how to install it; nothing runs", async () => {
  const s = sandbox("missing", []);
  const { l } = await launcher(s.env);
  const report = await l.prerequisites();
  expect(report.ok).toBe(false);
  expect(report.checks).toEqual([
    { id: "docker", status: "failed", message: "docker is not on your PATH: install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)" },
    {
      id: "kind",
      status: "failed",
      message: expect.stringMatching(/^kind is not on your PATH: install it \(https:\/\/kind\.sigs\.k8s\.io\/.*go install sigs\.k8s\.io\/kind@/),
    },
    { id: "kubectl", status: "failed", message: "kubectl is not on your PATH: install it (https://kubernetes.io/docs/tasks/tools/)" },
    { id: "docker-engine", status: "skipped", message: "needs the docker CLI" },
    { id: "memory", status: "skipped", message: "needs the docker CLI" },
    { id: "port", status: "ok", message: expect.stringMatching(/^port \d+ is free for the dashboard$/) },
  ]);
  await l.start();
  const end = await l.settled();
  expect(end.status).toBe("failed");
  expect(end.error?.step).toBe("prereqs");
  expect(end.error?.message.split("\n")).toHaveLength(3);
  expect(stepStates(end)).toMatchObject({ prereqs: "failed", cluster: "pending" });
  expect(s.calls()).toEqual([]);
});

test("prerequisites: only kind missing, a stopped engine, too little memory, a busy port", async () => {
  const noKind = sandbox("no-kind", ["docker", "kubectl"]);
  const r1 = await (await launcher(noKind.env)).l.prerequisites();
  expect(r1.checks.filter((c) => c.status === "failed").map((c) => c.id)).toEqual(["kind"]);
  expect(r1.checks.find((c) => c.id === "memory")).toEqual({ id: "memory", status: "ok", message: "Docker has 8192 MiB of memory (4096 MiB needed)" });

  const stopped = sandbox("no-engine");
  stopped.control(["fail docker info*"]);
  const r2 = await (await launcher(stopped.env)).l.prerequisites();
  expect(r2.checks.find((c) => c.id === "docker-engine")).toEqual({
    id: "docker-engine",
    status: "failed",
    message:
      "docker is installed but its engine does not answer ('docker info' failed: stub: 'docker info --format {{.MemTotal}}' failed as told): start Docker and retry",
  });
  expect(r2.checks.find((c) => c.id === "memory")?.status).toBe("skipped");

  const small = sandbox("small");
  const r3 = await (await launcher({ ...small.env, STUB_DOCKER_MEM_BYTES: String(2 * 1024 ** 3) })).l.prerequisites();
  expect(r3.checks.find((c) => c.id === "memory")).toEqual({
    id: "memory",
    status: "failed",
    message:
      "Docker has 2048 MiB of memory; Keel on kind needs at least 4096 MiB: raise it (Docker Desktop: Settings > Resources > Memory) or free memory, then retry",
  });

  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
  const port = (busy.address() as net.AddressInfo).port;
  try {
    const r4 = await (await launcher(sandbox("busy").env, { port })).l.prerequisites();
    expect(r4).toMatchObject({ ok: false });
    expect(r4.checks.find((c) => c.id === "port")).toEqual({
      id: "port",
      status: "failed",
      message: `port ${port} is in use: stop what listens there or choose another port (KEEL_PORT)`,
    });
  } finally {
    busy.close();
  }
});

test("through the IPC wrapper: start, a second start is a conflict result, bad input is refused, events reach emit", async () => {
  const s = sandbox("ipc");
  s.control(["hang kind create cluster *"]);
  const events: string[] = [];
  const services = createMainServices({ emit: (name) => events.push(name), launcher: { env: s.env, port: await freePort(), graceMs: 1_000 } });
  const call = ipcClient(undefined, services) as (ch: string, ...args: unknown[]) => Promise<any>;
  try {
    expect(await call("launcher:state")).toMatchObject({ ok: true, value: { status: "idle", context: "kind-keel" } });
    expect(await call("launcher:start", { skipBuild: "yes" })).toMatchObject({
      ok: false,
      error: { code: "invalid_input", message: expect.stringMatching(/skipBuild/) },
    });
    expect(await call("launcher:start", {})).toMatchObject({ ok: true, value: { status: "running" } });
    await waitFor(() => s.pids().length === 2, { what: "kind create cluster to hang" });
    expect(await call("launcher:start", {})).toEqual({
      ok: false,
      error: { name: "LauncherError", code: "conflict", message: "cannot start: the local environment is being set up; cancel it or wait" },
    });
    expect(await call("launcher:cancel")).toMatchObject({ ok: true, value: { status: "cancelled" } });
    expect((await call("launcher:logs", { step: "prereqs" })).value.map((l: LauncherLogLine) => l.line)).toContain("ok: the Docker engine answers");
    expect(events).toContain("launcher:changed");
    expect(events).toContain("launcher:log");
  } finally {
    await services.dispose();
  }
});

test("an existing cluster is detected at start, with the dashboard when Keel answers on the port", async () => {
  const s = sandbox("detect");
  const port = await freePort();
  const { l } = await launcher(s.env, { port });
  expect(await l.detect()).toMatchObject({ status: "idle", existingCluster: false, dashboardUrl: null });

  writeFileSync(path.join(s.state, "cluster"), "keel\n"); // the stub's kind now lists the cluster
  expect(await l.detect()).toMatchObject({ status: "idle", existingCluster: true, dashboardUrl: null });

  // Keel answering /readyz on the dashboard port (kind's published NodePort, here a loopback stand-in).
  const { createServer } = await import("node:http");
  const keel = createServer((req, res) => res.writeHead(req.url === "/readyz" ? 200 : 404).end());
  await new Promise<void>((r) => keel.listen(port, "127.0.0.1", r));
  try {
    expect(await l.detect()).toMatchObject({ status: "idle", existingCluster: true, dashboardUrl: `http://localhost:${port}` });
  } finally {
    keel.close();
  }
});

test("KEEL_* settings from the environment are honoured; the UI's choice wins for one run", async () => {
  const s = sandbox("settings");
  const port = await freePort();
  const l = new KindLauncher({ env: { ...s.env, KEEL_PORT: String(port), KEEL_SKIP_BUILD: "1", KEEL_KIND_CLUSTER: "mine" }, graceMs: 1_000 });
  launchers.push(l);
  expect(l.state()).toMatchObject({ port, context: "kind-mine" });
  await l.start();
  const first = await l.settled();
  expect(first).toMatchObject({ status: "succeeded", port, dashboardUrl: `http://localhost:${port}` });
  expect(first.steps.find((x) => x.name === "build")).toMatchObject({ state: "skipped", message: "KEEL_SKIP_BUILD=1" });
  expect(s.calls()).toContain(`kubectl --context kind-mine -n keel port-forward svc/keel-web ${port}:3000`);

  // The UI: build after all, on another port.
  const other = await freePort();
  await l.start({ skipBuild: false, port: other });
  const second = await l.settled();
  expect(second).toMatchObject({ status: "succeeded", port: other, dashboardUrl: `http://localhost:${other}` });
  expect(second.steps.find((x) => x.name === "build")?.state).toBe("done");
  expect(s.calls().at(-1)).toBe(`kubectl --context kind-mine -n keel port-forward svc/keel-web ${other}:3000`);
});
