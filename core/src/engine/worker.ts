// The worker: claims runs, drives a step function over each, keeps its liveness lock and leases,
// takes over runs of dead workers, and drains on stop(). All state it needs to continue a run is
// in Postgres; nothing here survives a crash, and nothing needs to.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type pg from "pg";
import { ClaimLostError } from "../errors.js";
import { isConnectionError } from "../db/errors.js";
import { PgListener } from "../db/listener.js";
import { PgCode, pgCode, type Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import { DEFAULT_MAX_EVENT_BYTES } from "./events.js";
import {
  cancelRun,
  claimRun,
  completeRun,
  failRun,
  handBackRun,
  interruptRun,
  INTERRUPTED_BY_MESSAGE,
  parkRun,
  retryRun,
  type Claim,
  type RunSignals,
} from "./lifecycle.js";
import { backoffMs, heartbeat, readSignals } from "./runs.js";
import { createStepContext } from "./step-context.js";
import { KEEL_LOCK_NAMESPACE, markDeadWorkers, takeOverDeadRuns } from "./takeover.js";
import { PermanentStepError, RetryableStepError, type ClaimedRun, type StepFn } from "./types.js";
import { noTelemetry, type EngineTelemetry, type RunTelemetry } from "../telemetry/hooks.js";

export type WorkerOptions = {
  pool: Pool;
  /** For the dedicated liveness/LISTEN connection (the pool's connections come and go). */
  connectionString: string;
  step: StepFn;
  logger: Logger;
  workerId?: string;
  version?: string;
  /** Runs this worker drives at once. */
  concurrency?: number;
  /** How long a claim stays valid without a heartbeat (backstop for a hung worker). */
  leaseMs?: number;
  heartbeatMs?: number;
  /** Fallback poll when no NOTIFY arrives. */
  pollMs?: number;
  /** How often to look for runs whose worker died. */
  sweepMs?: number;
  /** On stop(): how long the current step may take before it is aborted and the run handed back. */
  drainMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A run whose workers die this many times fails (protects the fleet from a poison run). */
  maxTakeovers?: number;
  maxEventBytes?: number;
  /** Metrics and spans of claims, runs and takeovers (default: metrics nobody reads, no spans). */
  telemetry?: EngineTelemetry;
};

type Active = { run: ClaimedRun; abort: AbortController };

export class Worker {
  readonly id: string;
  private readonly o: Required<Omit<WorkerOptions, "workerId">>;
  private readonly log: Logger;
  private listener: PgListener | null = null;
  private lockKey: number | null = null;
  private stopping = false;
  private draining = false;
  private readonly active = new Set<Active>();
  private wakers = new Set<() => void>();
  /** Bumped by every wake-up, so a NOTIFY that lands between a failed claim and the sleep is not lost. */
  private wakeGen = 0;
  private timers: NodeJS.Timeout[] = [];
  private slots: Promise<void>[] = [];
  private sweeping = false;

  constructor(opts: WorkerOptions) {
    this.id = opts.workerId ?? `w-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const leaseMs = opts.leaseMs ?? 30_000;
    this.o = {
      concurrency: 1,
      version: "dev",
      heartbeatMs: Math.max(50, Math.floor(leaseMs / 3)),
      pollMs: 2_000,
      sweepMs: 250,
      drainMs: 10_000,
      retryBaseMs: 1_000,
      retryMaxMs: 60_000,
      maxTakeovers: 10,
      maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
      telemetry: noTelemetry,
      ...opts,
      leaseMs,
    };
    this.log = opts.logger.child({ workerId: this.id });
  }

  /** Connects, takes the liveness lock, registers, and starts claiming. Resolves once running. */
  async start(): Promise<void> {
    this.listener = new PgListener({
      connectionString: this.o.connectionString,
      channels: ["keel_runs", "keel_run_signals"],
      applicationName: `keel-worker ${this.id}`,
      logger: this.log,
      onConnect: (c) => this.register(c),
      onNotification: (channel) => {
        if (channel === "keel_runs") this.wake();
        // Cancel/interrupt requests are read at the next step boundary; nothing to do early.
      },
      onDisconnect: (err) => {
        // Our lock is gone with the connection: other workers may take our runs over now.
        // Abort the steps in flight; their writes would be refused by the fence anyway.
        this.log.warn({ err: (err as Error)?.message }, "liveness connection lost");
        for (const a of this.active) a.abort.abort(new Error("liveness connection lost"));
      },
    });
    await this.listener.start();
    this.log.info({ lockKey: this.lockKey }, "worker started");
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => void fn().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "background task failed")), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.heartbeatMs, () => heartbeat(this.o.pool, this.id, this.o.leaseMs, this.activeRuns()));
    every(this.o.sweepMs, () => this.sweep());
    this.slots = Array.from({ length: this.o.concurrency }, () => this.slotLoop());
  }

  private async register(c: pg.Client): Promise<void> {
    for (;;) {
      if (this.lockKey === null) {
        const { rows } = await c.query<{ k: number }>("SELECT nextval('workers_lock_key_seq')::int AS k");
        this.lockKey = rows[0]!.k;
      }
      const { rows } = await c.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [KEEL_LOCK_NAMESPACE, this.lockKey]);
      if (rows[0]!.ok) break;
      this.lockKey = null; // the sequence wrapped onto a live worker's key: take another
    }
    // A stale row may carry the same key after the sequence cycled; its owner is dead (we hold the lock).
    await c.query("DELETE FROM workers WHERE lock_key = $1 AND id <> $2", [this.lockKey, this.id]);
    await c.query(
      `INSERT INTO workers (id, lock_key, version, hostname, pid) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET lock_key = EXCLUDED.lock_key, heartbeat_at = now(), stopped_at = NULL`,
      [this.id, this.lockKey, this.o.version, hostname(), process.pid],
    );
  }

  private wake(): void {
    this.wakeGen++;
    const ws = this.wakers;
    this.wakers = new Set();
    for (const w of ws) w();
  }

  private sleep(ms: number, sinceGen = this.wakeGen): Promise<void> {
    return new Promise((resolve) => {
      if (this.wakeGen !== sinceGen) return resolve();
      const done = () => {
        clearTimeout(t);
        this.wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private async slotLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let run: Claim | null;
      const gen = this.wakeGen;
      const claimStartedAt = Date.now();
      try {
        run = this.listener?.connected ? await claimRun(this.o.pool, this.id, this.o.leaseMs) : null;
        failures = 0;
      } catch (err) {
        failures++;
        this.log.warn({ err: (err as Error).message }, "claim failed");
        await this.sleep(backoffMs(failures, 100, 5_000));
        continue;
      }
      if (!run) {
        await this.sleep(await this.idleWaitMs(), gen);
        continue;
      }
      await this.execute(run, claimStartedAt);
    }
  }

  /** Until the next retry becomes due, capped by the poll interval. */
  private async idleWaitMs(): Promise<number> {
    try {
      const { rows } = await this.o.pool.query<{ ms: number | null }>(
        "SELECT ceil(extract(epoch FROM min(available_at) - now()) * 1000)::int AS ms FROM runs WHERE status = 'queued'",
      );
      const ms = rows[0]?.ms;
      return ms === null || ms === undefined ? this.o.pollMs : Math.max(5, Math.min(this.o.pollMs, ms));
    } catch {
      return this.o.pollMs;
    }
  }

  private async sweep(): Promise<void> {
    if (this.sweeping || !this.listener?.connected) return;
    this.sweeping = true;
    try {
      const taken = await takeOverDeadRuns(this.o.pool, { maxTakeovers: this.o.maxTakeovers });
      for (const t of taken) {
        this.log.info({ runId: t.runId, sessionId: t.sessionId, previousOwner: t.previousOwner, reason: t.reason, failed: t.failed }, "run taken over");
        this.o.telemetry.takenOver(t);
      }
      if (taken.length > 0) await markDeadWorkers(this.o.pool);
    } finally {
      this.sweeping = false;
    }
  }

  private async execute(claimed: Claim, claimStartedAt: number): Promise<void> {
    const { signals: claimSignals, trace, ...run } = claimed;
    const tel = this.o.telemetry.runClaimed(run, { ...trace, claimStartedAt });
    const log = this.log.child({ runId: run.id, sessionId: run.sessionId, teamId: run.teamId, epoch: run.epoch.toString() });
    const active: Active = { run, abort: new AbortController() };
    this.active.add(active);
    log.info({ attempt: run.attempt, takeovers: run.takeovers }, "run claimed");
    const ctx = tel.context(createStepContext({ pool: this.o.pool, run, signal: active.abort.signal, maxEventBytes: this.o.maxEventBytes }));
    let fresh: RunSignals | null = claimSignals;
    try {
      for (;;) {
        const signals = fresh ?? (await readSignals(this.o.pool, run));
        fresh = null;
        if (!signals) throw new ClaimLostError(run.id, run.epoch);
        if (signals.cancelRequested) {
          await this.close(log, "cancelled", () => cancelRun(this.o.pool, run), tel);
          return;
        }
        if (signals.interruptRequested) {
          await this.close(log, "interrupted", () => interruptRun(this.o.pool, run, INTERRUPTED_BY_MESSAGE), tel);
          return;
        }
        if (this.draining || active.abort.signal.aborted) {
          if (await this.persist(() => handBackRun(this.o.pool, run))) {
            tel.end("handed_back");
            log.info("run handed back");
          }
          return;
        }
        const outcome = await tel.step(() => this.o.step(ctx));
        if (outcome === "waiting_approval") {
          if (await this.persist(() => parkRun(this.o.pool, run))) {
            tel.end("waiting_approval");
            log.info("run waiting for approval");
          } else log.warn("claim lost");
          return;
        }
        if (outcome === "done") {
          if (await this.persist(() => completeRun(this.o.pool, run))) {
            tel.end("succeeded");
            log.info("run succeeded");
          } else log.warn("claim lost");
          return;
        }
      }
    } catch (err) {
      await this.onStepError(run, log, err, active.abort.signal, tel);
    } finally {
      tel.end("claim_lost"); // every other ending was recorded where it happened
      this.active.delete(active);
    }
  }

  private async close(log: Logger, status: "cancelled" | "interrupted" | "failed", write: () => Promise<boolean>, tel: RunTelemetry): Promise<void> {
    const ok = await this.persist(write);
    if (ok) tel.end(status);
    if (ok) log.info({ status }, "run finished");
    else log.warn("claim lost");
  }

  private async onStepError(run: ClaimedRun, log: Logger, err: unknown, signal: AbortSignal, tel: RunTelemetry): Promise<void> {
    if (err instanceof ClaimLostError) {
      log.warn("claim lost");
      return;
    }
    // Giving the run back is not a failed attempt: we were asked to stop, or the database went away.
    if ((signal.aborted && this.draining) || isConnectionError(err)) {
      const ok = await this.persist(() => handBackRun(this.o.pool, run));
      if (ok) tel.end("handed_back");
      log.warn({ err: (err as Error).message, handedBack: ok }, "run interrupted by shutdown or database outage");
      return;
    }
    // Every other failure is an attempt: counted, retried after a growing delay, and failed with
    // its reason once attempts run out. Nothing else ends a run that keeps failing.
    const attempt = run.attempt + 1;
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof PermanentStepError || err instanceof RetryableStepError ? err.code : "step_error";
    if (err instanceof PermanentStepError || attempt >= run.maxAttempts) {
      log.warn({ err: message, attempt }, "run failed");
      await this.close(log, "failed", () => failRun(this.o.pool, run, { code, message, attempts: attempt }), tel);
      return;
    }
    const delayMs = backoffMs(attempt, this.o.retryBaseMs, this.o.retryMaxMs);
    log.warn({ err: message, attempt, delayMs }, "run attempt failed; retrying");
    if (await this.persist(() => retryRun(this.o.pool, run, delayMs, { code, message, attempt }))) tel.end("retrying");
  }

  /**
   * Retries a fenced write through a database outage. Gives up (false) when the fence refuses
   * it, or once stop() is past its drain time: the lock or lease then hands the run to another
   * worker, so nothing is lost, only delayed.
   */
  private async persist(write: () => Promise<boolean>): Promise<boolean> {
    for (let i = 1; ; i++) {
      try {
        return await write();
      } catch (err) {
        // A deadlock or serialization victim was rolled back whole: writing again is safe.
        const transient = isConnectionError(err) || pgCode(err) === PgCode.deadlockDetected || pgCode(err) === PgCode.serializationFailure;
        if (!transient || (this.stopping && this.draining && i > 3)) {
          this.log.error({ err: (err as Error).message }, "could not record run outcome");
          return false;
        }
        await new Promise((r) => setTimeout(r, backoffMs(i, 100, 2_000)));
      }
    }
  }

  /** Runs this worker is driving right now (for status and tests). */
  activeRuns(): ClaimedRun[] {
    return [...this.active].map((a) => a.run);
  }

  /**
   * Graceful stop: claim nothing more; let each current step finish, then hand its run back
   * (checkpointed: everything the step wrote is in the log). A step still going after drainMs is
   * aborted through its signal, and its run handed back.
   */
  async stop(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.stopping) return void (await Promise.allSettled(this.slots));
    this.stopping = true;
    this.draining = true;
    this.wake();
    const drainMs = opts.drainMs ?? this.o.drainMs;
    const deadline = setTimeout(() => {
      for (const a of this.active) a.abort.abort(new Error("drain time exceeded"));
    }, drainMs);
    // A step that ignores its abort signal must not hold the process: past the grace period the
    // run is handed back from here (the fence then refuses whatever that step still writes).
    const grace = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), drainMs + 2_000).unref());
    if ((await Promise.race([Promise.allSettled(this.slots), grace])) === "timeout") {
      for (const a of this.active) await handBackRun(this.o.pool, a.run).catch(() => false);
      this.log.warn({ runs: this.active.size }, "step ignored abort; runs handed back");
    }
    clearTimeout(deadline);
    for (const t of this.timers) clearInterval(t);
    await this.o.pool.query("UPDATE workers SET stopped_at = now() WHERE id = $1", [this.id]).catch(() => {});
    await this.listener?.stop();
    this.log.info("worker stopped");
  }
}
