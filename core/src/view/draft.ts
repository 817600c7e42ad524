// The reply being written, from the token deltas of the model call in progress (core/src/agent/
// stream.ts), for live display in the dashboard and the desktop app. Pure and free of Node imports
// so browser bundles can use it. Deltas are ephemeral: the stored assistant item replaces the draft.
import type { Delta } from "../contract/events.js";

export type { Delta };
export type Draft = { content: string; reasoning: string; tools: string };

export const EMPTY_DRAFT: Draft = { content: "", reasoning: "", tools: "" };

/** The draft with one more delta: text and reasoning appended; a tool call's name opens `name(`, its argument fragments follow. */
export function applyDelta(d: Draft, delta: Delta): Draft {
  const name = delta.toolCall?.name;
  return {
    content: d.content + (delta.content ?? ""),
    reasoning: d.reasoning + (delta.reasoning ?? ""),
    tools: d.tools + (name ? `${d.tools ? "\n" : ""}${name}(` : "") + (delta.toolCall?.arguments ?? ""),
  };
}

export function isEmptyDraft(d: Draft): boolean {
  return !d.content && !d.reasoning && !d.tools;
}
