// The one interface the engine (Worker), the agent loop and the sandbox tools report through,
// and its no-op. Types only and no imports beyond the engine's types: code that takes an
// EngineTelemetry loads neither prom-client nor OpenTelemetry (a process that wants figures and
// spans passes a Telemetry, telemetry.ts, from @keel/core/telemetry).
import type { ClaimedRun, StepContext } from "../engine/types.js";

export type RunEnd = "succeeded" | "failed" | "retrying" | "cancelled" | "interrupted" | "waiting_approval" | "handed_back" | "claim_lost";

/** What the worker knows of a claim besides the run: its stored trace context and how long it waited. */
export type ClaimTrace = { traceparent: string | null; queuedMs: number; claimStartedAt: number };

export interface RunTelemetry {
  /** Runs one step inside the run's trace context: the model, tool and sandbox spans it makes are the run's children. */
  step<T>(fn: () => Promise<T>): Promise<T>;
  /** The step context, counting the events the step appends. */
  context(ctx: StepContext): StepContext;
  /** How this worker's hold on the run ended (idempotent: the first call counts). */
  end(outcome: RunEnd): void;
}

export interface EngineTelemetry {
  /** A worker claimed `run`. */
  runClaimed(run: ClaimedRun, c: ClaimTrace): RunTelemetry;
  /** A sweep took a run over from a dead or silent worker; silentMs: since its last heartbeat. */
  takenOver(t: { reason: string; silentMs: number | null }): void;
  /** One model call; `call` gets a function to invoke on every streamed delta (the first marks time to first token). */
  modelCall<T>(a: { model: string }, call: (delta: () => void) => Promise<T>): Promise<T>;
  /** One tool call; `ok` tells a result that reports a failure from a success. */
  toolCall<T>(a: { tool: string; callId: string }, call: () => Promise<T>, ok: (r: T) => boolean): Promise<T>;
  /** Getting the session's sandbox ready for a tool call. */
  sandboxAcquire<T>(a: { driver: string }, call: () => Promise<T>): Promise<T>;
}

const noRun: RunTelemetry = { step: (fn) => fn(), context: (ctx) => ctx, end: () => {} };

/** Records nothing: the default wherever no Telemetry is passed. */
export const noTelemetry: EngineTelemetry = {
  runClaimed: () => noRun,
  takenOver: () => {},
  modelCall: (_a, call) => call(() => {}),
  toolCall: (_a, call) => call(),
  sandboxAcquire: (_a, call) => call(),
};
