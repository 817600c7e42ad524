// What a session looks like to a person, computed from its log alone: each event parsed with the
// contract, every tool call with its state, approval decisions, the draft being written and the
// readable reasoning. One pure module for the dashboard and the desktop renderer, so the two show
// the same thing for the same log (they used to differ: the desktop said "requested" where the
// dashboard said "awaiting approval"). No Node imports: both bundles use it.
import { parseEvent, type AssistantItem, type ParsedEvent, type PayloadOf } from "../contract/events.js";

export { applyDelta, EMPTY_DRAFT, isEmptyDraft, type Delta, type Draft } from "./draft.js";
export { reasoningText } from "./reasoning.js";

/** One stored event as the UIs receive it: seq as a string (bigint in Postgres), payload as parsed JSON. */
export type LogEvent = { seq: string; type: string; payload: unknown };
/** A log event parsed with the contract (`known: false` for a newer type or a malformed payload). */
export type ViewEvent = ParsedEvent & { seq: string };

export const CALL_STATES = ["pending_approval", "approved", "denied", "running", "done", "error", "indeterminate", "not_run"] as const;
export type CallState = (typeof CALL_STATES)[number];

/** The words the UIs show for each state (the badge text). */
export const CALL_STATE_LABELS: Record<CallState, string> = {
  pending_approval: "awaiting approval",
  approved: "approved",
  denied: "denied",
  running: "running",
  done: "succeeded",
  error: "failed",
  indeterminate: "indeterminate",
  not_run: "not run",
};

export type Decision = PayloadOf<"approval_decided">;
export type ToolResult = PayloadOf<"tool_result">;

export type CallView = {
  id: string;
  name: string;
  arguments: string;
  state: CallState;
  result: ToolResult | null;
  decision: Decision | null;
};

export type SessionView = {
  events: ViewEvent[];
  /** The tool calls of each assistant message, by the message's seq, in order. */
  calls: Map<string, CallView[]>;
  /** The decision on each approval request, by the request's seq. */
  decisions: Map<string, Decision>;
};

export function viewEvent(e: LogEvent): ViewEvent {
  return { ...parseEvent(e.type, e.payload), seq: e.seq };
}

type Tracked = { call: CallView; asked: boolean; ended: boolean };

/**
 * Call ids are matched to the newest call with that id (a provider may reuse ids across turns).
 * A call without a result is `not_run` once the log moved on without it (a newer assistant
 * message, or its run ended failed, cancelled or interrupted), else `running`.
 */
export function sessionView(log: readonly LogEvent[]): SessionView {
  const events = log.map(viewEvent);
  const calls = new Map<string, CallView[]>();
  const decisions = new Map<string, Decision>();
  const byId = new Map<string, Tracked>();
  const requests = new Map<string, string>(); // call id → seq of its newest approval request
  const tracked: Tracked[] = [];
  for (const e of events) {
    if (!e.known) continue;
    switch (e.type) {
      case "assistant_message": {
        for (const t of tracked) t.ended = true;
        const list = (e.payload.message.tool_calls ?? []).map((c) => {
          const t: Tracked = {
            call: { id: c.id, name: c.function.name, arguments: c.function.arguments, state: "running", result: null, decision: null },
            asked: false,
            ended: false,
          };
          byId.set(c.id, t);
          tracked.push(t);
          return t.call;
        });
        calls.set(e.seq, list);
        break;
      }
      case "tool_result": {
        const t = byId.get(e.payload.tool_call_id);
        if (t && !t.call.result) t.call.result = e.payload;
        break;
      }
      case "approval_requested": {
        const t = byId.get(e.payload.callId);
        if (t) t.asked = true;
        requests.set(e.payload.callId, e.seq);
        break;
      }
      case "approval_decided": {
        const t = byId.get(e.payload.callId);
        if (t) t.call.decision = e.payload;
        const req = requests.get(e.payload.callId);
        if (req) decisions.set(req, e.payload);
        break;
      }
      case "run_failed":
      case "run_cancelled":
      case "run_interrupted":
        for (const t of tracked) t.ended = true;
        break;
      default:
        break;
    }
  }
  for (const t of tracked) t.call.state = callState(t);
  return { events, calls, decisions };
}

function callState(t: Tracked): CallState {
  const { result, decision } = t.call;
  if (decision?.decision === "denied") return "denied";
  if (result) return result.state === "succeeded" ? "done" : result.state === "indeterminate" ? "indeterminate" : "error";
  if (t.ended) return "not_run";
  if (decision?.decision === "approved") return "approved";
  return t.asked ? "pending_approval" : "running";
}

/** The text of a user message: a string, or its text parts joined. */
export function userText(p: PayloadOf<"user_message">): string {
  return typeof p.content === "string" ? p.content : p.content.map((c) => c.text).join("\n");
}

/** The assistant item's visible text, or "" when it only called tools. */
export function assistantText(m: AssistantItem): string {
  return m.content ?? "";
}

/** What a UI shows for an event it cannot render: a newer type, or a payload that breaks the contract. */
export function unknownEventText(e: Extract<ViewEvent, { known: false }>): string {
  return e.reason === "unknown_type" ? `unknown event ${e.type}` : `invalid ${e.type} event${e.problem ? ` (${e.problem})` : ""}`;
}

/** Pretty-printed tool arguments, or the text as sent when it is not JSON. */
export function prettyArguments(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
