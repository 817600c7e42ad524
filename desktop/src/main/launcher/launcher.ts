// The one-click local environment: kind/up.sh's steps, one `--step NAME` child at a time, with
// state, elapsed time and streamed log lines as events; cancel kills the running step's whole
// process group; retry continues at the failed step; teardown deletes the cluster. The steps
// themselves check and skip (see kind/up.sh), so a second run on a ready cluster changes nothing.
import path from "node:path";
import { fileURLToPath } from "node:url";
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
import { checkPrerequisites } from "./prereqs.ts";
import { spawnGroup, type GroupProcess } from "./process.ts";

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

/** kind/up.sh in this checkout. A packaged app ships kind/ and k8s/ as resources and passes `script`. */
export const DEFAULT_KIND_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../kind/up.sh");

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
  script?: string;
  bash?: string;
  /** Environment of the steps (PATH finds docker, kind and kubectl). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  cluster?: string;
  image?: string;
  /** Local port of the dashboard. */
  port?: number;
  minDockerMemoryMb?: number;
  /** SIGTERM → SIGKILL delay on cancel. */
  graceMs?: number;
  emit?: Emit;
  maxLogLines?: number;
};

type StepResult = { state: Extract<LauncherStepState, "done" | "skipped" | "failed" | "cancelled">; message: string | null };

export class KindLauncher {
  private readonly o: Required<Omit<KindLauncherOptions, "emit">> & { emit: Emit };
  private st: LauncherState;
  private logs: LauncherLogLine[] = [];
  private current: GroupProcess | undefined;
  private forwarder: GroupProcess | undefined;
  private running: Promise<void> = Promise.resolve();
  private cancelRequested = false;
  private runOpts: { skipBuild?: boolean | undefined; rebuild?: boolean | undefined } = {};

  constructor(opts: KindLauncherOptions = {}) {
    this.o = {
      script: opts.script ?? DEFAULT_KIND_SCRIPT,
      bash: opts.bash ?? "bash",
      env: opts.env ?? process.env,
      cluster: opts.cluster ?? "keel",
      image: opts.image ?? "keel:dev",
      port: opts.port ?? 3000,
      minDockerMemoryMb: opts.minDockerMemoryMb ?? 4096,
      graceMs: opts.graceMs ?? 5_000,
      maxLogLines: opts.maxLogLines ?? 5_000,
      emit: opts.emit ?? (() => {}),
    };
    this.st = { runId: 0, status: "idle", steps: freshSteps(), context: `kind-${this.o.cluster}`, dashboardUrl: null, error: null };
  }

  state(): LauncherState {
    return structuredClone(this.st);
  }

  logLines(step?: LauncherLogLine["step"]): LauncherLogLine[] {
    return this.logs.filter((l) => !step || l.step === step);
  }

  prerequisites(): Promise<PrereqReport> {
    return checkPrerequisites({ env: this.o.env, port: this.o.port, minDockerMemoryMb: this.o.minDockerMemoryMb });
  }

  /** Starts every step from the first; resolves once started (follow the launcher:changed events). */
  async start(opts: { skipBuild?: boolean | undefined; rebuild?: boolean | undefined } = {}): Promise<LauncherState> {
    this.assertIdle("start");
    await this.stopForwarder();
    this.runOpts = opts;
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
    this.st = { ...this.st, status: "succeeded", dashboardUrl: `http://localhost:${this.o.port}` };
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

  private scriptEnv(): NodeJS.ProcessEnv {
    return {
      ...this.o.env,
      KEEL_KIND_CLUSTER: this.o.cluster,
      KEEL_IMAGE: this.o.image,
      KEEL_PORT: String(this.o.port),
      KEEL_MIN_DOCKER_MEMORY_MB: String(this.o.minDockerMemoryMb),
      KEEL_SKIP_BUILD: this.runOpts.skipBuild ? "1" : "",
      KEEL_REBUILD: this.runOpts.rebuild ? "1" : "",
    };
  }

  /** One script invocation to its end. A "skipped: …" line marks the step skipped. */
  private async runScript(step: LauncherStepName | "teardown", args: string[]): Promise<StepResult> {
    let skipped: string | null = null;
    const tail = { stdout: "", stderr: "" };
    const proc = spawnGroup(this.o.bash, [this.o.script, ...args], {
      env: this.scriptEnv(),
      onLine: (stream, line) => {
        this.log(step, stream, line);
        if (line.trim()) tail[stream] = line.trim();
        if (stream === "stdout" && line.startsWith("skipped: ")) skipped = line.slice("skipped: ".length);
      },
    });
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
    const proc = spawnGroup(this.o.bash, [this.o.script, "--step", "port-forward"], {
      env: this.scriptEnv(),
      onLine: (stream, line) => {
        this.log("port-forward", stream, line);
        if (line.trim()) tail[stream] = line.trim();
        if (/^Forwarding from /.test(line)) forwarding();
      },
    });
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
    return { state: "done", message: `forwarding http://localhost:${this.o.port}` };
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
