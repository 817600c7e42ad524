// The readable part of an assistant item's reasoning, for display (dashboard, desktop app). Pure and
// free of Node imports so browser bundles can use it. What is stored and sent back to the provider
// is always the item itself, verbatim; this only renders it.
import type { AssistantItem } from "../contract/events.js";

export type ReasoningFields = {
  reasoning_content?: unknown;
  reasoning?: unknown;
  thinking_blocks?: unknown;
  reasoning_details?: unknown;
};

/**
 * `reasoning_content` (DeepSeek, vLLM), `reasoning` / `reasoning_details` (OpenRouter) or
 * `thinking_blocks` (Anthropic via LiteLLM); encrypted or redacted parts are shown as such, since
 * only the provider can read them. Empty when the item has no reasoning.
 */
export function reasoningText(item: ReasoningFields | AssistantItem): string {
  const m = item as ReasoningFields;
  if (typeof m.reasoning_content === "string" && m.reasoning_content) return m.reasoning_content;
  if (typeof m.reasoning === "string" && m.reasoning) return m.reasoning;
  const blocks = Array.isArray(m.thinking_blocks) ? (m.thinking_blocks as { thinking?: unknown; type?: unknown }[]) : [];
  if (blocks.length > 0)
    return blocks.map((b) => (typeof b?.thinking === "string" ? b.thinking : b?.type === "redacted_thinking" ? "[redacted]" : "")).join("\n");
  const details = Array.isArray(m.reasoning_details) ? (m.reasoning_details as { type?: unknown; text?: unknown; summary?: unknown }[]) : [];
  return details
    .map((d) => (typeof d?.text === "string" ? d.text : typeof d?.summary === "string" ? d.summary : d?.type === "reasoning.encrypted" ? "[encrypted]" : ""))
    .join("");
}
