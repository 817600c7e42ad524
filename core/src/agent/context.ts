// Rebuilds the model context from the session log, checks it is well formed, and repairs it by
// rule. Pure: the same log always gives the same context, on any worker.
//
// Rules (each repair is reported, never silent):
// - tool results go right after the assistant message that called them, whatever the log order
//   (a user message that arrived while tools ran is placed after the results);
// - a tool result whose call is not in the context is left out (orphan_tool_result);
// - an assistant message that is not a complete assistant item is left out (malformed_assistant);
// - a user message whose payload breaks the contract is left out (malformed_user_message);
// - calls of an older assistant message that never got a result, though the log goes on with a
//   newer assistant message, are answered in the context by a note that no result was recorded
//   (missing_tool_result): a provider refuses a call without its result, and dropping the call
//   would hide that it was made;
// - calls still without a result when a newer user message exists are answered "not run"
//   by the loop (interrupted_by_user), since the user changed course before they ran.
// Payloads are read through the event contract (parseEventTextVerbatim): a payload that breaks its
// schema is a repair, never a cast that lets a wrong shape through to the provider.
import { parseEventTextVerbatim, type EventType, type PayloadOf, type RepairKind } from "../contract/events.js";
import type { SessionEvent } from "../engine/types.js";
import type { ChatMessage, ToolCallOut } from "./model.js";

export const AgentEventType = {
  assistantMessage: "assistant_message",
  toolResult: "tool_result",
  approvalRequested: "approval_requested",
  approvalDecided: "approval_decided",
  modelError: "model_error",
  contextRepaired: "context_repaired",
} as const satisfies Record<string, EventType>;

export type AssistantEventPayload = PayloadOf<"assistant_message">;
export type ToolResultPayload = PayloadOf<"tool_result">;

export type PendingCall = { call: ToolCallOut; assistantRunId: string; interruptedByUser: boolean };
export type Repair = { kind: RepairKind; seq: string; detail: string };

/** What the model reads for a call the log has no result for (see missing_tool_result). */
export const MISSING_RESULT_NOTE = "No result was recorded for this call: it did not run to completion, and its effect is unknown.";

export type AgentContext = {
  messages: ChatMessage[];
  /** Calls of the newest assistant message that have no result yet, in order. */
  pending: PendingCall[];
  /** What the loop does next. */
  next: "tools" | "model" | "done";
  repairs: Repair[];
};

const READ_TYPES: ReadonlySet<string> = new Set<EventType>(["user_message", AgentEventType.assistantMessage, AgentEventType.toolResult]);

type Open = { runId: string; seq: string; calls: ToolCallOut[]; resolved: Set<string> };

export function buildContext(events: readonly SessionEvent[], instructions: string): AgentContext {
  const messages: ChatMessage[] = instructions ? [{ role: "system", content: instructions }] : [];
  const repairs: Repair[] = [];
  let open: Open | null = null;
  let heldUsers: ChatMessage[] = [];

  const close = () => {
    open = null;
    messages.push(...heldUsers);
    heldUsers = [];
  };

  for (const raw of events) {
    if (!READ_TYPES.has(raw.type)) continue; // engine and loop bookkeeping: not part of the conversation
    const e = parseEventTextVerbatim(raw.type, raw.payloadText);
    const seq = raw.seq.toString();
    if (raw.type === "user_message") {
      if (!e.known || e.type !== "user_message") {
        repairs.push({ kind: "malformed_user_message", seq, detail: e.known ? "not a user message" : (e.problem ?? "payload breaks the contract") });
        continue;
      }
      const msg: ChatMessage = { role: "user", content: e.payload.content };
      if (open) heldUsers.push(msg);
      else messages.push(msg);
    } else if (raw.type === AgentEventType.assistantMessage) {
      if (!e.known || e.type !== "assistant_message") {
        repairs.push({ kind: "malformed_assistant", seq, detail: "not a complete assistant message" });
        continue;
      }
      const message = e.payload.message;
      // The loop never calls the model while calls are open; if the log says otherwise, each
      // unanswered call gets a note instead of being dropped, and the repair is reported.
      const o = open as Open | null;
      if (o) {
        for (const c of o.calls.filter((c) => !o.resolved.has(c.id))) {
          messages.push({ role: "tool", tool_call_id: c.id, content: MISSING_RESULT_NOTE });
          repairs.push({ kind: "missing_tool_result", seq: o.seq, detail: `call ${c.id} (${c.function.name}) has no result` });
        }
        close();
      }
      messages.push(message);
      if (message.tool_calls?.length) open = { runId: raw.runId ?? "", seq, calls: message.tool_calls, resolved: new Set() };
    } else if (raw.type === AgentEventType.toolResult) {
      const p = e.known && e.type === "tool_result" ? e.payload : null;
      const o = open as Open | null;
      if (!p || !o || !o.calls.some((c) => c.id === p.tool_call_id) || o.resolved.has(p.tool_call_id)) {
        repairs.push({ kind: "orphan_tool_result", seq, detail: `no open call ${p?.tool_call_id ?? "?"}` });
        continue;
      }
      messages.push({ role: "tool", tool_call_id: p.tool_call_id, content: p.content });
      o.resolved.add(p.tool_call_id);
      if (o.resolved.size === o.calls.length) close();
    }
  }

  const o = open as Open | null;
  if (o) {
    const interruptedByUser = heldUsers.length > 0;
    return {
      messages,
      pending: o.calls.filter((c) => !o.resolved.has(c.id)).map((call) => ({ call, assistantRunId: o.runId, interruptedByUser })),
      next: "tools",
      repairs,
    };
  }
  const last = messages.at(-1);
  const next = !last || last.role === "system" ? "done" : last.role === "assistant" ? "done" : "model";
  return { messages, pending: [], next, repairs };
}
