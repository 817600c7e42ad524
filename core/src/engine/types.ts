import type { EventInput, EventType } from "../contract/events.js";

import type { RunStatus } from "../contract/vocabulary.js";
export { RUN_STATUSES, BUSY_POLICIES, type RunStatus, type BusyPolicy } from "../contract/vocabulary.js";
export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ["succeeded", "failed", "cancelled", "interrupted"];
/** Not finished: the session has work in hand (lists show it as active; cancel and delete end these). */
export const ACTIVE_RUN_STATUSES = ["queued", "running", "waiting_approval"] as const satisfies readonly RunStatus[];
/** A run in one of these holds its session: no other run of the session is claimed meanwhile. */
export const SESSION_HOLDING_RUN_STATUSES = ["running", "waiting_approval"] as const satisfies readonly RunStatus[];

/** Event types the engine itself writes (payloads: contract/events.ts); the agent loop adds its own. */
export const EngineEventType = {
  userMessage: "user_message",
  runFailed: "run_failed",
  /** An attempt failed and the run waits for its next one: { runId, code, message, attempt, maxAttempts, delayMs, nextAttemptAt }. */
  runRetrying: "run_retrying",
  runCancelled: "run_cancelled",
  runInterrupted: "run_interrupted",
  /** A human approved or denied a tool call of a parked run: { callId, decision, reason, decidedBy }. */
  approvalDecided: "approval_decided",
} as const satisfies Record<string, EventType>;

export interface SessionEvent {
  sessionId: string;
  seq: bigint;
  type: string;
  /** The payload exactly as it was appended (json keeps the text verbatim). */
  payloadText: string;
  runId: string | null;
  createdAt: Date;
}

export function eventPayload<T = unknown>(e: SessionEvent): T {
  return JSON.parse(e.payloadText) as T;
}

/** A run as the worker holding it sees it. `epoch` fences every write the worker makes. */
export interface ClaimedRun {
  id: string;
  sessionId: string;
  teamId: string;
  epoch: bigint;
  attempt: number;
  maxAttempts: number;
  takeovers: number;
  workerId: string;
}

export interface RunRow {
  id: string;
  sessionId: string;
  teamId: string;
  status: RunStatus;
  attempt: number;
  maxAttempts: number;
  takeovers: number;
  epoch: bigint;
  leaseOwner: string | null;
  lastError: unknown;
  cancelRequested: boolean;
  interruptRequested: boolean;
  /** Tokens the model calls of this run used, as the provider reported them. */
  usage: { promptTokens: number; completionTokens: number };
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Set while a run waits for its next attempt after a failed one (status queued, attempt > 0). */
  nextAttemptAt: Date | null;
}

/** A new event to append, typed by the contract: `payload` (serialized here) or `payloadText` (kept byte for byte, checked against the contract). */
export type NewEvent = EventInput | { type: EventType; payloadText: string };

/** Thrown by a step for an error that retrying cannot fix: the run fails at once with this message. */
export class PermanentStepError extends Error {
  constructor(
    message: string,
    readonly code = "step_failed",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PermanentStepError";
  }
}

/**
 * Thrown by a step for an error that another attempt may fix (a provider outage): the attempt is
 * counted and the run retried after a growing delay, then fails with this code and message.
 */
export class RetryableStepError extends Error {
  constructor(
    message: string,
    readonly code = "step_error",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RetryableStepError";
  }
}

/** continue: call the step again; done: the run succeeded; waiting_approval: park the run until a human decides. */
export type StepOutcome = "continue" | "done" | "waiting_approval";

/**
 * What the engine hands a step: the only way a step writes. Every write is fenced by the run's
 * epoch and owner (a worker that lost its claim writes nothing and gets ClaimLostError), so a step
 * needs no pool of its own for writing and cannot forget the fence.
 */
export interface StepContext {
  run: ClaimedRun;
  /** Aborted when the worker must let go: drain deadline passed, or the claim was lost. */
  signal: AbortSignal;
  /** The largest event payload the log accepts (bytes of JSON); append refuses bigger ones. */
  maxEventBytes: number;
  /** The session's whole log, read from Postgres: all a step may rely on. */
  events(): Promise<SessionEvent[]>;
  /** Appends to the session's log if this worker still holds the run; throws ClaimLostError otherwise. */
  append(e: NewEvent): Promise<bigint>;
  /** The tool ledger (`tool_calls`), each write fenced and in one transaction with its event. */
  ledger: StepLedger;
}

export type ToolCallState = "requested" | "started" | "succeeded" | "failed" | "indeterminate";
export type LedgerRow = {
  idempotencyKey: string;
  state: ToolCallState;
  approval: "approved" | "denied" | null;
  approvalReason: string | null;
  result: string | null;
};
/** A tool call the model asked for, written as an intent before anything runs. */
export type ToolCallIntent = { callId: string; name: string; arguments: string };
export type TokenUsage = { promptTokens: number; completionTokens: number };

/** Idempotency key of a tool call: the asking run's id + the call id (the sandbox refuses a key twice). */
export const ledgerKey = (runId: string, callId: string) => `${runId}:${callId}`;

export interface StepLedger {
  get(key: string): Promise<LedgerRow | null>;
  /** Appends the model's reply, writes the intents of its calls and adds its token usage to the run, in one fenced transaction. */
  recordModelReply(reply: { event: NewEvent; calls: readonly ToolCallIntent[]; usage: TokenUsage | null }): Promise<bigint>;
  /** The intent is on record before the tool runs: a crash after this is detectable ("started", no result). */
  markStarted(key: string): Promise<void>;
  /** Stores the call's outcome (when it has a ledger row) and appends its event, in one fenced transaction. */
  recordResult(key: string | null, outcome: { state: ToolCallState; result: unknown }, event: NewEvent): Promise<bigint>;
}

/** One step of a run. Returns "done" when the run is complete; throws to fail the attempt. */
export type StepFn = (ctx: StepContext) => Promise<StepOutcome>;
