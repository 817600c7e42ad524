// The model interface the agent loop uses, and the accumulator that turns a provider's stream of
// chat.completion chunks into one complete assistant message.
//
// Reasoning is kept verbatim: every field of the assistant delta is accumulated, known or not
// (reasoning_content from DeepSeek/vLLM, thinking_blocks with signatures from LiteLLM/Anthropic,
// encrypted reasoning fields, …). Strings are concatenated in arrival order, so the stored text is
// exactly the text the provider sent; the message goes back to the provider exactly as stored.

import type { Delta } from "../contract/events.js";
import type { ToolSpec } from "../tools/tools.js";

export type ToolCallOut = { id: string; type: "function"; function: { name: string; arguments: string } };

/** An assistant message as the provider produced it, plus any provider-specific fields. */
export type AssistantMessage = {
  role: "assistant";
  content: string | null;
  tool_calls?: ToolCallOut[];
  [extra: string]: unknown;
};

export type ChatMessage =
  { role: "system"; content: string } | { role: "user"; content: unknown } | AssistantMessage | { role: "tool"; tool_call_id: string; content: string };

export type ModelRequest = { model: string; messages: ChatMessage[]; tools: ToolSpec[]; signal: AbortSignal };

export type Usage = { promptTokens: number; completionTokens: number };

export type ModelResult = { message: AssistantMessage; finishReason: string | null; usage: Usage | null; model: string };

/** A streamed chunk, shaped like OpenAI's chat.completion.chunk (only what we read is typed). */
export type ChunkLike = {
  model?: string;
  choices?: { index?: number; delta?: Record<string, unknown> | null; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
};

/** Receives each delta for live display (shape: contract/events.ts `Delta`). */
export type DeltaSink = (delta: Delta) => void;

export interface ModelClient {
  /** Streams one completion; calls onDelta for live display; resolves with the whole message. */
  complete(req: ModelRequest, onDelta: DeltaSink): Promise<ModelResult>;
}

type PartialCall = { id?: string; type?: string; function: { name: string; arguments: string } };

export class MessageAccumulator {
  private content: string | null = null;
  private readonly calls: PartialCall[] = [];
  private readonly extra: Record<string, unknown> = {};
  finishReason: string | null = null;
  usage: Usage | null = null;
  model = "";

  add(chunk: ChunkLike, onDelta?: DeltaSink): void {
    if (chunk.model) this.model = chunk.model;
    if (chunk.usage) this.usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
    const choice = chunk.choices?.find((c) => (c.index ?? 0) === 0);
    if (!choice) return;
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    const delta = choice.delta ?? {};
    for (const [key, value] of Object.entries(delta)) {
      if (value === null || value === undefined || key === "role") continue;
      if (key === "content" && typeof value === "string") {
        this.content = (this.content ?? "") + value;
        if (value) onDelta?.({ content: value });
      } else if (key === "tool_calls" && Array.isArray(value)) {
        for (const tc of value as { index?: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }[]) {
          const i = tc.index ?? this.calls.length;
          const call = (this.calls[i] ??= { function: { name: "", arguments: "" } });
          if (tc.id) call.id = tc.id;
          if (tc.type) call.type = tc.type;
          if (tc.function?.name) call.function.name += tc.function.name;
          if (tc.function?.arguments) call.function.arguments += tc.function.arguments;
          onDelta?.({ toolCall: { index: i, name: tc.function?.name, arguments: tc.function?.arguments } });
        }
      } else if (key === "thinking_blocks" && Array.isArray(value)) {
        this.addThinkingBlocks(value as Record<string, unknown>[], onDelta);
      } else {
        this.extra[key] = mergeExtra(this.extra[key], value);
        if (typeof value === "string" && /reason|think/.test(key)) onDelta?.({ reasoning: value });
      }
    }
  }

  /**
   * Thinking blocks arrive as fragments: text pieces of the current block, then its signature.
   * A fragment continues the last block while that block has no signature yet and is of the
   * same type; a signature closes it. Anything else starts a new block.
   */
  private addThinkingBlocks(blocks: Record<string, unknown>[], onDelta?: DeltaSink): void {
    const list = ((this.extra.thinking_blocks as Record<string, unknown>[] | undefined) ??= []);
    for (const b of blocks) {
      const last = list.at(-1);
      const continues = last && last.signature === undefined && last.type === b.type;
      if (continues) {
        for (const [k, v] of Object.entries(b)) {
          if (k === "type") continue;
          last[k] = typeof v === "string" && typeof last[k] === "string" && k !== "signature" ? (last[k] as string) + v : v;
        }
      } else {
        list.push({ ...b });
      }
      if (typeof b.thinking === "string") onDelta?.({ reasoning: b.thinking });
    }
  }

  message(): AssistantMessage {
    const msg: AssistantMessage = { role: "assistant", content: this.content, ...this.extra };
    if (this.calls.length > 0) {
      msg.tool_calls = this.calls.map((c, i) => ({
        id: c.id ?? `call_${i}`,
        type: "function" as const,
        function: { name: c.function.name, arguments: c.function.arguments },
      }));
    }
    return msg;
  }
}

function mergeExtra(prev: unknown, next: unknown): unknown {
  if (prev === undefined) return Array.isArray(next) ? [...next] : next;
  if (typeof prev === "string" && typeof next === "string") return prev + next;
  if (Array.isArray(prev) && Array.isArray(next)) return [...prev, ...next];
  return next;
}
