// The session-event contract: every event type the engine and the agent loop write, the zod schema
// of each payload, and the delta (ephemeral stream event) shape. Writers are typed by it
// (`PayloadOf<T>`, engine/events.ts `encodeEvent`), readers parse with it (`parseEvent`): the
// dashboard, the desktop app, the OpenAI-compatible summary, the SSE frames.
//
// Browser-safe on purpose: zod only, no pg, no node: imports (the dashboard and the desktop
// renderer bundle it). Reader schemas are loose (unknown fields kept): an older reader must accept
// what a newer writer adds. A type a reader does not know is returned as `known: false`, never a throw.
import { z } from "zod";

const usage = z.looseObject({ promptTokens: z.number(), completionTokens: z.number() });

export const toolCallSchema = z.looseObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

/** The provider's assistant item, verbatim: provider fields (reasoning_content, thinking_blocks, …) ride along. */
export const assistantItemSchema = z.looseObject({
  role: z.literal("assistant"),
  content: z.string().nullable(),
  tool_calls: z.array(toolCallSchema).optional(),
});

export const textPartSchema = z.looseObject({ type: z.literal("text"), text: z.string() });

/** Tool-call states the loop records on the ledger and in `tool_result` (ledger.ts ToolCallState, minus "requested"/"started"). */
export const TOOL_RESULT_STATES = ["succeeded", "failed", "indeterminate"] as const;

export const REPAIR_KINDS = ["orphan_tool_result", "malformed_assistant", "missing_tool_result", "malformed_user_message"] as const;
export type RepairKind = (typeof REPAIR_KINDS)[number];

/** One schema per event type. Adding a type here is the whole job: writers and readers follow. */
export const eventSchemas = {
  // -- the engine (engine/client.ts, worker.ts, runs.ts, takeover.ts) --
  user_message: z.looseObject({ role: z.literal("user"), content: z.union([z.string(), z.array(textPartSchema)]) }),
  /** The run ended failed: attempts or takeovers exhausted, or a permanent step error. */
  run_failed: z.looseObject({ runId: z.string(), code: z.string(), message: z.string(), attempts: z.number().int().optional() }),
  /** An attempt failed and the run waits for its next one. */
  run_retrying: z.looseObject({
    runId: z.string(),
    code: z.string(),
    message: z.string(),
    attempt: z.number().int(),
    maxAttempts: z.number().int(),
    delayMs: z.number(),
    nextAttemptAt: z.string(),
  }),
  run_cancelled: z.looseObject({ runId: z.string() }),
  run_interrupted: z.looseObject({ runId: z.string(), reason: z.string() }),
  // -- the agent loop (agent/loop.ts, ledger.ts, approvals.ts) --
  /** The complete assistant item, stored before anything else happens. */
  assistant_message: z.looseObject({ message: assistantItemSchema, model: z.string(), finishReason: z.string().nullable(), usage: usage.nullable() }),
  tool_result: z.looseObject({ tool_call_id: z.string(), name: z.string(), content: z.string(), isError: z.boolean(), state: z.enum(TOOL_RESULT_STATES) }),
  approval_requested: z.looseObject({ callId: z.string(), name: z.string(), arguments: z.string() }),
  approval_decided: z.looseObject({
    callId: z.string(),
    decision: z.enum(["approved", "denied"]),
    reason: z.string().nullable(),
    decidedBy: z.string().nullable(),
  }),
  model_error: z.looseObject({ code: z.string(), message: z.string(), retryable: z.boolean().optional() }),
  context_repaired: z.looseObject({ repairs: z.array(z.looseObject({ kind: z.enum(REPAIR_KINDS), seq: z.string(), detail: z.string() })) }),
} as const;

export type EventType = keyof typeof eventSchemas;
export const EVENT_TYPES = Object.keys(eventSchemas) as EventType[];
export type PayloadOf<T extends EventType> = z.infer<(typeof eventSchemas)[T]>;

/** A typed event to write: `{ type, payload }` where the payload matches the type. */
export type EventInput<T extends EventType = EventType> = { [K in T]: { type: K; payload: PayloadOf<K> } }[T];

export type AssistantItem = z.infer<typeof assistantItemSchema>;
export type ToolCall = z.infer<typeof toolCallSchema>;
export type ToolResultState = (typeof TOOL_RESULT_STATES)[number];

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventSchemas, type);
}

/**
 * What a reader gets for one stored event. `known: false` covers a type this version does not know
 * (written by a newer one: `reason: "unknown_type"`) and a known type whose payload does not match
 * (`reason: "invalid_payload"`, with the first problem): shown as such, never thrown.
 */
export type ParsedEvent =
  | { [K in EventType]: { known: true; type: K; payload: PayloadOf<K> } }[EventType]
  | { known: false; type: string; payload: unknown; reason: "unknown_type" | "invalid_payload"; problem: string | null };

export function parseEvent(type: string, payload: unknown): ParsedEvent {
  if (!isEventType(type)) return { known: false, type, payload, reason: "unknown_type", problem: null };
  const r = eventSchemas[type].safeParse(payload);
  if (!r.success) {
    const i = r.error.issues[0];
    return { known: false, type, payload, reason: "invalid_payload", problem: i ? `${i.path.join(".") || "payload"}: ${i.message}` : null };
  }
  return { known: true, type, payload: r.data } as ParsedEvent;
}

/** Parses a stored payload's text (the log keeps JSON text verbatim); text that is not JSON is an invalid payload. */
export function parseEventText(type: string, text: string): ParsedEvent {
  return parseText(type, text, false);
}

/**
 * As `parseEventText`, but a known payload is the parsed JSON itself rather than zod's copy. zod
 * builds its output with the schema's keys first and the unknown ones after; a provider's assistant
 * item must go back to the provider byte for byte, its reasoning fields in their stored order
 * (core/test/agent.test.ts, resume.test.ts). The schemas have no defaults or transforms, so a payload
 * that passes its schema already is of the output type; the agent loop's context reads this way.
 */
export function parseEventTextVerbatim(type: string, text: string): ParsedEvent {
  return parseText(type, text, true);
}

function parseText(type: string, text: string, verbatim: boolean): ParsedEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    return { known: false, type, payload: text, reason: "invalid_payload", problem: "payload is not JSON" };
  }
  const e = parseEvent(type, payload);
  return verbatim && e.known ? ({ ...e, payload } as ParsedEvent) : e;
}

// ---- deltas: ephemeral stream events (NOTIFY keel_stream → SSE `event: delta` → UIs) ----

/** One piece of the reply being written: text, reasoning, or a fragment of a tool call. Too long: `{ truncated: true }`. */
export const deltaSchema = z.looseObject({
  content: z.string().optional(),
  reasoning: z.string().optional(),
  toolCall: z.looseObject({ index: z.number().int().optional(), name: z.string().optional(), arguments: z.string().optional() }).optional(),
  truncated: z.boolean().optional(),
});
export type Delta = z.infer<typeof deltaSchema>;

/** The NOTIFY payload on `keel_stream` (agent/stream.ts): `n` numbers a run's deltas in order. */
export const deltaNotificationSchema = z.looseObject({ sessionId: z.string(), runId: z.string(), n: z.number().int().optional(), delta: deltaSchema });
export type DeltaNotification = z.infer<typeof deltaNotificationSchema>;

/** The data of an SSE `event: delta` frame (server/src/sse.ts). */
export const deltaFrameSchema = z.looseObject({ runId: z.string().nullable().optional(), delta: deltaSchema });
export type DeltaFrame = z.infer<typeof deltaFrameSchema>;

/**
 * SSE frame names of a session stream that are not log events: `delta` (no id: ephemeral),
 * `unauthorized` (credentials revoked; the stream ends) and `reconnect` (renewal; resume with
 * Last-Event-ID). Every other frame is a stored event: id = seq, event = its type, data = payload.
 */
export const STREAM_CONTROL_FRAMES = ["delta", "unauthorized", "reconnect"] as const;

/** A delta frame's data, or null when it is not one (a reader skips it rather than crash). */
export function parseDeltaFrame(data: string): DeltaFrame | null {
  try {
    const r = deltaFrameSchema.safeParse(JSON.parse(data));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
