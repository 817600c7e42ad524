// Rebuilds the model context from the session log, checks it is well formed, and repairs it by
// rule. Pure: the same log always gives the same context, on any worker.
//
// Rules (each repair is reported, never silent):
// - tool results go right after the assistant message that called them, whatever the log order
//   (a user message that arrived while tools ran is placed after the results);
// - a tool result whose call is not in the context is left out (orphan_tool_result);
// - an assistant message that is not a complete assistant item is left out (malformed_assistant);
// - calls of an older assistant message that never got a result, though the log goes on with a
//   newer assistant message, are answered in the context by a note that no result was recorded
//   (missing_tool_result): a provider refuses a call without its result, and dropping the call
//   would hide that it was made;
// - calls still without a result when a newer user message exists are answered "not run"
//   by the loop (interrupted_by_user), since the user changed course before they ran.
import type { EventType, PayloadOf } from "../contract/events.js";
import { eventPayload, type SessionEvent } from "../engine/types.js";
import type { AssistantMessage, ChatMessage, ToolCallOut } from "./model.js";

export const AgentEventType = {
  assistantMessage: "assistant_message",
  toolResult: "tool_result",
  approvalRequested: "approval_requested",
  approvalDecided: "approval_decided",
  modelError: "model_error",
  contextRepaired: "context_repaired",
} as const satisfies Record<string, EventType>;

export type AssistantEventPayload = { message: AssistantMessage; model: string; finishReason: string | null; usage: { promptTokens: number; completionTokens: number } | null };
export type ToolResultPayload = PayloadOf<"tool_result">;

export type PendingCall = { call: ToolCallOut; assistantRunId: string; interruptedByUser: boolean };
export type Repair = { kind: "orphan_tool_result" | "malformed_assistant" | "missing_tool_result"; seq: string; detail: string };

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

  for (const e of events) {
    if (e.type === "user_message") {
      const p = eventPayload<{ content: unknown }>(e);
      const msg: ChatMessage = { role: "user", content: p.content };
      if (open) heldUsers.push(msg);
      else messages.push(msg);
    } else if (e.type === AgentEventType.assistantMessage) {
      const p = safePayload<AssistantEventPayload>(e);
      if (!p || !isAssistantMessage(p.message)) {
        repairs.push({ kind: "malformed_assistant", seq: e.seq.toString(), detail: "not a complete assistant message" });
        continue;
      }
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
      messages.push(p.message);
      if (p.message.tool_calls?.length) open = { runId: e.runId ?? "", seq: e.seq.toString(), calls: p.message.tool_calls, resolved: new Set() };
    } else if (e.type === AgentEventType.toolResult) {
      const p = safePayload<ToolResultPayload>(e);
      const o = open as Open | null;
      if (!p || !o || !o.calls.some((c) => c.id === p.tool_call_id) || o.resolved.has(p.tool_call_id)) {
        repairs.push({ kind: "orphan_tool_result", seq: e.seq.toString(), detail: `no open call ${p?.tool_call_id ?? "?"}` });
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

function safePayload<T>(e: SessionEvent): T | null {
  try {
    return eventPayload<T>(e);
  } catch {
    return null;
  }
}

function isAssistantMessage(m: unknown): m is AssistantMessage {
  if (typeof m !== "object" || m === null) return false;
  const a = m as AssistantMessage;
  if (a.role !== "assistant") return false;
  if (a.content !== null && typeof a.content !== "string") return false;
  if (a.tool_calls !== undefined) {
    if (!Array.isArray(a.tool_calls)) return false;
    for (const c of a.tool_calls) if (typeof c?.id !== "string" || typeof c.function?.name !== "string" || typeof c.function.arguments !== "string") return false;
  }
  return true;
}
