// The one-click local environment: kind/up.sh's steps, one `--step NAME` child at a time, with
// state, elapsed time and streamed log lines as events; cancel kills the running step's whole
// process group; retry continues at the failed step; teardown deletes the cluster. The steps
// themselves check and skip (see kind/up.sh), so a second run on a ready cluster changes nothing.
import { existsSync } from "node:fs";
import path from "node:path";
import {
  launcherSteps,
  type Emit,
  type ErrorCode,
  type LauncherLogLine,
  type LauncherState,
  type LauncherStep,
  type LauncherStepName,
  type LauncherStepState,
  type PrereqReport,
} from "../../shared/contract.ts";
import { execFile } from "node:child_process";
import { checkPrerequisites, findOnPath } from "./prereqs.ts";
import { groupAlive, spawnGroup, type GroupProcess } from "./process.ts";
import { ProcessGroupRecord } from "./pidfile.ts";
import { findCheckout, publishedImage, resolveScriptLayout, type LayoutInput, type ScriptLayout } from "./resources.ts";

export const STEP_TITLES: Record<LauncherStepName, string> = {
  prereqs: "Check prerequisites",
  cluster: "Create the kind cluster",
  "agent-sandbox": "Install agent-sandbox",
  build: "Build the Keel image",
  load: "Load the image into kind",
  apply: "Apply Keel's manifests",
  rollout: "Wait for Keel to start",
  "port-forward": "Forward the dashboard port",
};

/** kind/up.sh of the checkout this module runs from (sources or the bundle in desktop/out/main), or null. */
export function checkoutKindScript(from = import.meta.dirname): string | null {
  const root = findCheckout(from);
  return root ? path.join(root, "kind", "up.sh") : null;
}

export class LauncherError extends Error {
  override readonly name = "LauncherError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type KindLauncherOptions = {
  /** Where kind/up.sh is found (resources.ts); default: the checkout above this module. `script` overrides it. */
  layout?: Omit<LayoutInput, "from"> & { from?: string };
  /** kind/up.sh to run (tests); default: from `layout`. */
  script?: string;
  bash?: string;
  /** Environment of the steps (PATH finds docker, kind and kubectl). Default: process.env. Its KEEL_* settings
   *  (KEEL_KIND_CLUSTER, KEEL_IMAGE, KEEL_PORT, KEEL_MIN_DOCKER_MEMORY_MB, KEEL_SKIP_BUILD, KEEL_PUBLISHED_IMAGE)
   *  are the defaults of the options below; an option given here or by the UI wins. */
  env?: NodeJS.ProcessEnv;
  cluster?: string;
  /** The image to build (source tree) or run. Default KEEL_IMAGE, else keel:dev with a source tree, else the published image. */
  image?: string;
  /** Local port of the dashboard (KEEL_PORT, else 3000). */
  port?: number;
  minDockerMemoryMb?: number;
  /** The app's version: the published image's tag when there is no source tree. */
  appVersion?: string;
  /** A file recording the process groups of running steps, so the next start can stop ones a crash left behind. */
  pidFile?: string;
  /** Hands the operator a connection once the dashboard answers (handover.ts); its result lands in state.connection. */
  handover?: (info: { context: string; dashboardUrl: string }) => Promise<{ id: string; baseUrl: string; role: string; actor: string; teamId: string }>;
  /** SIGTERM → SIGKILL delay on cancel. */
  graceMs?: number;
  emit?: Emit;
  maxLogLines?: number;
};

type RunOptions = { skipBuild?: boolean | undefined; rebuild?: boolean | undefined; port?: number | undefined };
type StepResult = { state: Extract<LauncherStepState, "done" | "skipped" | "failed" | "cancelled">; message: string | null };

export class KindLauncher {
  private readonly o: Required<Omit<KindLauncherOptions, "emit" | "script" | "layout" | "image" | "pidFile" | "handover">> &
    Pick<KindLauncherOptions, "script" | "image" | "handover"> & { emit: Emit; layout: LayoutInput };
  private readonly record: ProcessGroupRecord | undefined;
  private resolved: ScriptLayout | undefined;
  private st: LauncherState;
  private logs: LauncherLogLine[] = [];
  private current: GroupProcess | undefined;
  private forwarder: GroupProcess | undefined;
  private running: Promise<void> = Promise.resolve();
  private cancelRequested = false;
  private runOpts: RunOptions = {};

  constructor(opts: KindLauncherOptions = {}) {
    const env = opts.env ?? process.env;
    const num = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : undefined);
    this.o = {
      ...(opts.script ? { script: opts.script } : {}),
      layout: { packaged: false, from: import.meta.dirname, ...opts.layout },
      bash: opts.bash ?? "bash",
      env,
      cluster: opts.cluster ?? (env.KEEL_KIND_CLUSTER || "keel"),
      ...(opts.image || env.KEEL_IMAGE ? { image: opts.image ?? env.KEEL_IMAGE } : {}),
      port: opts.port ?? num(env.KEEL_PORT) ?? 3000,
      minDockerMemoryMb: opts.minDockerMemoryMb ?? num(env.KEEL_MIN_DOCKER_MEMORY_MB) ?? 4096,
      appVersion: opts.appVersion ?? "0.1.0",
      graceMs: opts.graceMs ?? 5_000,
      maxLogLines: opts.maxLogLines ?? 5_000,
      emit: opts.emit ?? (() => {}),
      ...(opts.handover ? { handover: opts.handover } : {}),
    };
    this.record = opts.pidFile ? new ProcessGroupRecord(opts.pidFile) : undefined;
    this.st = {
      runId: 0,
      status: "idle",
      steps: freshSteps(),
      context: `kind-${this.o.cluster}`,
      dashboardUrl: null,
      error: null,
      port: this.o.port,
      image: null,
      existingCluster: null,
      connection: null,
    };
  }

  /** Stops the process groups a previous run of the app left running (crash, kill -9); returns their ids. */
  async stopOrphans(): Promise<number[]> {
    return this.record ? this.record.stopOrphans(this.o.graceMs) : [];
  }

  /**
   * Whether the kind cluster exists already (kind get clusters), and if so whether Keel answers on
   * the dashboard port: then the state says so and carries the dashboard URL without a run.
   */
  async detect(timeoutMs = 10_000): Promise<LauncherState> {
    const kind = findOnPath("kind", this.o.env);
    if (!kind || this.st.status !== "idle") return this.state();
    const out = await new Promise<string | null>((resolve) =>
      execFile(kind, ["get", "clusters"], { env: this.o.env, timeout: timeoutMs }, (err, stdout) => resolve(err ? null : String(stdout))),
    );
    if (out === null) return this.state();
    const exists = out.split("\n").some((l) => l.trim() === this.o.cluster);
    const url = `http://localhost:${this.o.port}`;
    const answers =
      exists &&
      (await fetch(`http://127.0.0.1:${this.o.port}/readyz`, { signal: AbortSignal.timeout(3_000) }).then(
        (r) => r.ok,
        () => false,
      ));
    this.st = { ...this.st, existingCluster: exists, dashboardUrl: answers ? url : null };
    this.changed();
    return this.state();
  }

  state(): LauncherState {
    return structuredClone(this.st);
  }

  logLines(step?: LauncherLogLine["step"]): LauncherLogLine[] {
    return this.logs.filter((l) => !step || l.step === step);
  }

  prerequisites(): Promise<PrereqReport> {
    return checkPrerequisites({ env: this.o.env, port: this.st.port, minDockerMemoryMb: this.o.minDockerMemoryMb });
  }

  /** Starts every step from the first; resolves once started (follow the launcher:changed events). */
  async start(opts: RunOptions = {}): Promise<LauncherState> {
    this.assertIdle("start");
    await this.stopForwarder();
    this.runOpts = opts;
    this.st = { ...this.st, port: opts.port ?? this.o.port, connection: null };
    this.logs = [];
    this.st.steps = freshSteps();
    this.begin(0);
    return this.state();
  }

  /** Continues at the step that failed or was cancelled; the steps before it are not run again. */
  async retry(): Promise<LauncherState> {
    this.assertIdle("retry");
    if (this.st.status !== "failed" && this.st.status !== "cancelled") {
      throw new LauncherError("conflict", `there is nothing to retry: the local environment is ${this.st.status}. Start it instead`);
    }
    await this.stopForwarder();
    const from = this.st.steps.findIndex((s) => s.state !== "done" && s.state !== "skipped");
    for (const s of this.st.steps.slice(from)) Object.assign(s, pendingStep(s.name));
    this.begin(from < 0 ? 0 : from);
    return this.state();
  }

  /** Kills the running step's process tree; resolves when it is gone. */
  async cancel(): Promise<LauncherState> {
    if (this.st.status === "running") {
      this.cancelRequested = true;
      await this.current?.kill(this.o.graceMs);
      await this.running;
    }
    return this.state();
  }

  /** Stops forwarding and deletes the kind cluster (kind/up.sh --down). */
  async teardown(): Promise<LauncherState> {
    if (this.st.status === "tearing-down") throw new LauncherError("conflict", "the local environment is already being torn down");
    await this.cancel();
    await this.stopForwarder();
    this.st = { ...this.st, runId: this.st.runId + 1, status: "tearing-down", dashboardUrl: null, error: null };
    this.changed();
    const r = await this.runScript("teardown", ["--down"]);
    if (r.state === "done") this.st = { ...this.st, status: "torn-down", steps: freshSteps() };
    else this.st = { ...this.st, status: "failed", error: { step: "teardown", message: r.message ?? "kind delete cluster failed" } };
    this.changed();
    return this.state();
  }

  /** For app quit: cancel a run, stop forwarding. */
  async dispose(): Promise<void> {
    await this.cancel();
    await this.stopForwarder();
  }

  /** Resolves when the current run (if any) has ended. */
  settled(): Promise<LauncherState> {
    return this.running.then(() => this.state());
  }

  private assertIdle(what: string) {
    if (this.st.status === "running" || this.st.status === "tearing-down") {
      throw new LauncherError(
        "conflict",
        `cannot ${what}: the local environment is ${this.st.status === "running" ? "being set up" : "being torn down"}; cancel it or wait`,
      );
    }
  }

  private begin(from: number) {
    this.cancelRequested = false;
    this.st = { ...this.st, runId: this.st.runId + 1, status: "running", dashboardUrl: null, error: null };
    this.changed();
    this.running = this.execute(from).catch((err: Error) => {
      this.st = {
        ...this.st,
        status: "failed",
        error: { step: this.st.steps.find((s) => s.state === "running")?.name ?? "prereqs", message: `internal error: ${err.message}` },
      };
      this.changed();
    });
  }

  private async execute(from: number): Promise<void> {
    for (let i = from; i < this.st.steps.length; i++) {
      const step = this.st.steps[i]!;
      if (this.cancelRequested) return this.finishCancelled(step);
      const t0 = performance.now();
      Object.assign(step, { state: "running", startedAt: new Date().toISOString(), elapsedMs: null, message: null });
      this.changed();
      const r =
        step.name === "prereqs"
          ? await this.prereqStep()
          : step.name === "port-forward"
            ? await this.portForwardStep()
            : await this.runScript(step.name, ["--step", step.name]);
      Object.assign(step, { state: r.state, message: r.message, elapsedMs: Math.round(performance.now() - t0) });
      if (r.state === "cancelled") return this.finishCancelled(step);
      if (r.state === "failed") {
        this.st = { ...this.st, status: "failed", error: { step: step.name, message: r.message ?? `step ${step.name} failed` } };
        this.changed();
        return;
      }
      this.changed();
    }
    const dashboardUrl = `http://localhost:${this.st.port}`;
    this.st = { ...this.st, status: "succeeded", dashboardUrl, existingCluster: true };
    this.changed();
    await this.handOver(dashboardUrl);
  }

  /** A connection for the operator (an API key made for them, never pasted); a failure is shown, the run stays succeeded. */
  private async handOver(dashboardUrl: string) {
    if (!this.o.handover) return;
    try {
      const c = await this.o.handover({ context: this.st.context, dashboardUrl });
      this.st = { ...this.st, connection: { id: c.id, baseUrl: c.baseUrl, role: c.role, actor: c.actor, teamId: c.teamId, error: null } };
    } catch (err) {
      this.st = { ...this.st, connection: { id: null, baseUrl: dashboardUrl, error: (err as Error).message } };
    }
    this.changed();
  }

  private finishCancelled(step: LauncherStep) {
    if (step.state === "pending" || step.state === "running") Object.assign(step, { state: "cancelled", message: "cancelled" });
    this.st = { ...this.st, status: "cancelled" };
    this.changed();
  }

  private async prereqStep(): Promise<StepResult> {
    const report = await this.prerequisites();
    for (const c of report.checks) this.log("prereqs", c.status === "failed" ? "stderr" : "stdout", `${c.status === "ok" ? "ok" : c.status}: ${c.message}`);
    if (this.cancelRequested) return { state: "cancelled", message: "cancelled" };
    const failed = report.checks.filter((c) => c.status === "failed");
    return failed.length ? { state: "failed", message: failed.map((c) => c.message).join("\n") } : { state: "done", message: null };
  }

  /** The script and its root, resolved (and staged, for a package) once. Throws ScriptNotFoundError. */
  private layout(): ScriptLayout {
    if (this.o.script) {
      const root = path.dirname(path.dirname(this.o.script));
      return { root, script: this.o.script, sourceTree: existsSync(path.join(root, "Dockerfile")), origin: "checkout" };
    }
    this.resolved ??= resolveScriptLayout(this.o.layout);
    return this.resolved;
  }

  /** What the steps run with: the environment's KEEL_* settings, with the options and the UI's choices over them. */
  private scriptEnv(): NodeJS.ProcessEnv {
    const { sourceTree } = this.layout();
    const image = this.o.image ?? (sourceTree ? "keel:dev" : publishedImage(this.o.env, this.o.appVersion));
    this.st.image = image;
    const env: NodeJS.ProcessEnv = {
      ...this.o.env,
      KEEL_KIND_CLUSTER: this.o.cluster,
      KEEL_IMAGE: image,
      KEEL_PORT: String(this.st.port),
      KEEL_MIN_DOCKER_MEMORY_MB: String(this.o.minDockerMemoryMb),
    };
    // Unset by the UI: the environment's value stays.
    if (this.runOpts.skipBuild !== undefined) env.KEEL_SKIP_BUILD = this.runOpts.skipBuild ? "1" : "";
    if (this.runOpts.rebuild !== undefined) env.KEEL_REBUILD = this.runOpts.rebuild ? "1" : "";
    // No Dockerfile to build from: the build step pulls the published image (kind/up.sh KEEL_PULL).
    if (!sourceTree) env.KEEL_PULL = "1";
    return env;
  }

  /** spawnGroup for the script, with its process group recorded while it runs. */
  private spawnScript(args: string[], onLine: (stream: "stdout" | "stderr", line: string) => void): GroupProcess {
    const { script, root } = this.layout();
    const proc = spawnGroup(this.o.bash, [script, ...args], { cwd: root, env: this.scriptEnv(), onLine });
    if (this.record && proc.pid > 0) {
      this.record.add(proc.pid, script);
      // Removed once nothing of the group is left; a group that outlives its leader stays recorded.
      void proc.exited.then(() => (groupAlive(proc.pid) ? undefined : this.record?.remove(proc.pid)));
    }
    return proc;
  }

  /** One script invocation to its end. A "skipped: …" line marks the step skipped. */
  private async runScript(step: LauncherStepName | "teardown", args: string[]): Promise<StepResult> {
    let skipped: string | null = null;
    const tail = { stdout: "", stderr: "" };
    let proc: GroupProcess;
    try {
      proc = this.spawnScript(args, (stream, line) => {
        this.log(step, stream, line);
        if (line.trim()) tail[stream] = line.trim();
        if (stream === "stdout" && line.startsWith("skipped: ")) skipped = line.slice("skipped: ".length);
      });
    } catch (err) {
      this.log(step, "stderr", (err as Error).message);
      return { state: "failed", message: (err as Error).message };
    }
    this.current = proc;
    const exit = await proc.exited;
    this.current = undefined;
    if (this.cancelRequested && step !== "teardown") return { state: "cancelled", message: "cancelled" };
    if (exit.code === 0) return skipped ? { state: "skipped", message: skipped } : { state: "done", message: null };
    return { state: "failed", message: failureMessage(step, exit, tail) };
  }

  /**
   * kubectl port-forward keeps running: the step is done once it prints "Forwarding from", and
   * the process stays as the forwarder until teardown, a new start, or dispose.
   */
  private async portForwardStep(): Promise<StepResult> {
    const tail = { stdout: "", stderr: "" };
    let forwarding!: () => void;
    const ready = new Promise<void>((r) => (forwarding = r));
    let proc: GroupProcess;
    try {
      proc = this.spawnScript(["--step", "port-forward"], (stream, line) => {
        this.log("port-forward", stream, line);
        if (line.trim()) tail[stream] = line.trim();
        if (/^Forwarding from /.test(line)) forwarding();
      });
    } catch (err) {
      return { state: "failed", message: (err as Error).message };
    }
    this.current = proc;
    const first = await Promise.race([ready.then(() => null), proc.exited]);
    this.current = undefined;
    if (this.cancelRequested) {
      await proc.kill(this.o.graceMs);
      return { state: "cancelled", message: "cancelled" };
    }
    if (first) return { state: "failed", message: failureMessage("port-forward", first, tail) };
    this.forwarder = proc;
    void proc.exited.then((exit) => {
      if (this.forwarder !== proc) return; // stopped on purpose
      this.forwarder = undefined;
      const step = this.st.steps.find((s) => s.name === "port-forward")!;
      const message = `${failureMessage("port-forward", exit, tail)}. The dashboard is no longer forwarded: retry to forward it again`;
      Object.assign(step, { state: "failed", message });
      this.st = { ...this.st, status: "failed", dashboardUrl: null, error: { step: "port-forward", message } };
      this.changed();
    });
    return { state: "done", message: `forwarding http://localhost:${this.st.port}` };
  }

  private async stopForwarder() {
    const f = this.forwarder;
    this.forwarder = undefined;
    await f?.kill(this.o.graceMs);
  }

  private log(step: LauncherLogLine["step"], stream: "stdout" | "stderr", line: string) {
    const entry: LauncherLogLine = { runId: this.st.runId, step, stream, line, at: new Date().toISOString() };
    this.logs.push(entry);
    if (this.logs.length > this.o.maxLogLines) this.logs.splice(0, this.logs.length - this.o.maxLogLines);
    this.o.emit("launcher:log", entry);
  }

  private changed() {
    this.o.emit("launcher:changed", this.state());
  }
}

function pendingStep(name: LauncherStepName): LauncherStep {
  return { name, title: STEP_TITLES[name], state: "pending", startedAt: null, elapsedMs: null, message: null };
}
function freshSteps(): LauncherStep[] {
  return launcherSteps.map(pendingStep);
}

/** The script's own last words (its `die` lines), else the exit status. */
function failureMessage(step: string, exit: { code: number | null; signal: NodeJS.Signals | null }, tail: { stdout: string; stderr: string }): string {
  const status = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
  const last = (tail.stderr || tail.stdout).replace(/^kind\/up\.sh: /, "");
  return last ? `${last} (${step}: ${status})` : `step ${step} failed (${status}); see its log`;
}
