// Builders for OpenAI-shaped `chat.completion.chunk` sequences and `chat.completion` bodies, plus a
// reference assembler. Shapes follow what OpenAI and OpenAI-compatible providers actually send:
// - first chunk carries the role; tool-call headers (id, type, name, arguments: "") come in their own
//   chunk and later chunks carry only `{index, function: {arguments}}` fragments;
// - DeepSeek/vLLM-style `delta.reasoning_content` fragments (with `content: null` beside them, and
//   `reasoning_content: null` beside content fragments, as DeepSeek does);
// - LiteLLM/Anthropic-style `delta.thinking_blocks` fragments; a block's signature arrives in its own
//   chunk (`thinking: ""`) and closes the block; `reasoning_content` mirrors the thinking text;
// - a last chunk with `delta: {}` and finish_reason, then a usage chunk with `choices: []`. The fake
//   server drops the usage chunk unless the request asked for `stream_options.include_usage`.

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "function_call";
export interface ThinkingBlock {
  type: "thinking";
  thinking: string;
  signature?: string;
}
export interface RedactedThinkingBlock {
  type: "redacted_thinking";
  data: string;
}
export type AnyThinkingBlock = ThinkingBlock | RedactedThinkingBlock;
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments?: string };
}
export interface ChunkDelta {
  role?: "assistant";
  content?: string | null;
  refusal?: string | null;
  tool_calls?: ToolCallDelta[];
  reasoning_content?: string | null;
  thinking_blocks?: AnyThinkingBlock[];
  [extra: string]: unknown;
}
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [k: string]: unknown;
}
export interface ChatCompletionChunkLike {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint?: string | null;
  choices: { index: number; delta: ChunkDelta; logprobs?: null; finish_reason: FinishReason | null }[];
  usage?: Usage | null;
}
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}
export interface AssistantMessage {
  role: "assistant";
  content: string | null;
  reasoning_content?: string;
  thinking_blocks?: AnyThinkingBlock[];
  tool_calls?: ToolCall[];
  [extra: string]: unknown;
}
export interface ToolCallSpec {
  id: string;
  name: string;
  args: string;
}
export interface MessageSpec {
  text?: string;
  reasoningContent?: string;
  thinkingBlocks?: AnyThinkingBlock[];
  toolCalls?: ToolCallSpec[];
}
export interface StreamOptions {
  model?: string;
  id?: string;
  created?: number;
  /** chunk size (in code points) for content, reasoning_content and thinking text; default 4 */
  chunkSize?: number;
  /** how many argument fragments per tool call; default 3 */
  splitArgsInto?: number;
  /** round-robin the argument fragments of parallel tool calls instead of one call after another */
  interleave?: boolean;
  finishReason?: FinishReason;
  /** usage for the final chunk; default computed; false: no usage chunk at all */
  usage?: Usage | false;
}

export const DEFAULT_MODEL = "gpt-4o-mini";
let seq = 0;
const nextId = (): string => `chatcmpl-fake${(++seq).toString().padStart(6, "0")}`;

/** Pieces of at most `size` code points (never splits a surrogate pair). "" gives [""]. */
export function chunksOf(s: string, size: number): string[] {
  const cps = Array.from(s);
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += Math.max(1, size)) out.push(cps.slice(i, i + Math.max(1, size)).join(""));
  return out.length ? out : [""];
}
/** At most `n` pieces of roughly equal size (fewer if the string is shorter). */
export function splitInto(s: string, n: number): string[] {
  return chunksOf(s, Math.ceil(Array.from(s).length / Math.max(1, n)));
}

/** The canonical assistant message for a spec: what assembling its stream must give, byte for byte. */
export function assistantMessage(spec: MessageSpec): AssistantMessage {
  if (spec.reasoningContent !== undefined && spec.thinkingBlocks !== undefined) {
    throw new Error("openai-chunks: give reasoningContent or thinkingBlocks, not both (thinking blocks imply reasoning_content)");
  }
  const msg: AssistantMessage = { role: "assistant", content: spec.text ?? null };
  const reasoning = spec.reasoningContent ?? spec.thinkingBlocks?.map((b) => (b.type === "thinking" ? b.thinking : "")).join("");
  if (reasoning !== undefined) msg.reasoning_content = reasoning;
  if (spec.thinkingBlocks) msg.thinking_blocks = spec.thinkingBlocks.map(canonicalBlock);
  if (spec.toolCalls?.length) {
    msg.tool_calls = spec.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.args } }));
  }
  return msg;
}
function canonicalBlock(b: AnyThinkingBlock): AnyThinkingBlock {
  if (b.type === "redacted_thinking") return { type: b.type, data: b.data };
  if (b.signature === undefined) throw new Error("openai-chunks: a thinking block needs a signature (it closes the block when streamed)");
  return { type: b.type, thinking: b.thinking, signature: b.signature };
}

/** The chunk sequence for an assistant message: reasoning, then content, then tool calls. */
export function messageStream(spec: MessageSpec, opts: StreamOptions = {}): ChatCompletionChunkLike[] {
  const msg = assistantMessage(spec); // validates
  const base = { id: opts.id ?? nextId(), created: opts.created ?? Math.floor(Date.now() / 1000), model: opts.model ?? DEFAULT_MODEL };
  const size = opts.chunkSize ?? 4;
  const out: ChatCompletionChunkLike[] = [];
  const push = (delta: ChunkDelta, finish_reason: FinishReason | null = null): void => {
    out.push({ ...base, object: "chat.completion.chunk", system_fingerprint: "fp_fake", choices: [{ index: 0, delta, logprobs: null, finish_reason }] });
  };
  const deepseek = spec.reasoningContent !== undefined;
  push(spec.text !== undefined && !deepseek ? { role: "assistant", content: "", refusal: null } : { role: "assistant", content: null });
  let fragments = 0;
  if (deepseek) {
    for (const r of chunksOf(spec.reasoningContent!, size)) {
      push({ content: null, reasoning_content: r });
      fragments++;
    }
  }
  for (const b of spec.thinkingBlocks ?? []) {
    if (b.type === "redacted_thinking") {
      push({ thinking_blocks: [{ type: b.type, data: b.data }] });
      continue;
    }
    for (const t of chunksOf(b.thinking, size)) {
      push({ reasoning_content: t, thinking_blocks: [{ type: "thinking", thinking: t }] });
      fragments++;
    }
    push({ thinking_blocks: [{ type: "thinking", thinking: "", signature: b.signature! }] });
  }
  if (spec.text !== undefined) {
    for (const t of chunksOf(spec.text, size)) {
      push(deepseek ? { content: t, reasoning_content: null } : { content: t });
      fragments++;
    }
  }
  const calls = msg.tool_calls ?? [];
  const frags = calls.map((c) => splitInto(c.function.arguments, opts.splitArgsInto ?? 3));
  const header = (i: number): void => {
    const c = calls[i]!;
    push({ tool_calls: [{ index: i, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }] });
  };
  const frag = (i: number, k: number): void => {
    push({ tool_calls: [{ index: i, function: { arguments: frags[i]![k]! } }] });
    fragments++;
  };
  if (opts.interleave) {
    const rounds = Math.max(0, ...frags.map((f) => f.length));
    for (let k = 0; k < rounds; k++) {
      for (let i = 0; i < calls.length; i++) {
        if (k === 0) header(i);
        if (k < frags[i]!.length) frag(i, k);
      }
    }
  } else {
    for (let i = 0; i < calls.length; i++) {
      header(i);
      frags[i]!.forEach((_, k) => frag(i, k));
    }
  }
  push({}, opts.finishReason ?? (calls.length ? "tool_calls" : "stop"));
  if (opts.usage !== false) {
    const usage = opts.usage ?? { prompt_tokens: 11, completion_tokens: fragments, total_tokens: 11 + fragments };
    out.push({ ...base, object: "chat.completion.chunk", system_fingerprint: "fp_fake", choices: [], usage });
  }
  return out;
}

/** Content split over several chunks, finish_reason "stop", usage chunk. */
export function textStream(text: string, opts: StreamOptions = {}): ChatCompletionChunkLike[] {
  return messageStream({ text }, opts);
}
/** Parallel tool calls, each one's arguments split over `splitArgsInto` chunks; finish_reason "tool_calls". */
export function toolCallStream(calls: ToolCallSpec[], opts: StreamOptions = {}): ChatCompletionChunkLike[] {
  return messageStream({ toolCalls: calls }, opts);
}
/** Reasoning as providers stream it (reasoning_content or thinking_blocks), then text and/or tool calls. */
export function reasoningStream(spec: MessageSpec, opts: StreamOptions = {}): ChatCompletionChunkLike[] {
  return messageStream(spec, opts);
}

export interface ChatCompletionLike {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: string | null;
  choices: { index: number; message: AssistantMessage; logprobs: null; finish_reason: FinishReason }[];
  usage: Usage;
}
/** A non-streamed `chat.completion`; the message is embedded as given (extra fields kept). */
export function completionJson(
  message: AssistantMessage | MessageSpec,
  usage: Usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  opts: { model?: string; id?: string; created?: number; finishReason?: FinishReason } = {},
): ChatCompletionLike {
  const msg = "role" in message ? (message as AssistantMessage) : assistantMessage(message as MessageSpec);
  return {
    id: opts.id ?? nextId(),
    object: "chat.completion",
    created: opts.created ?? Math.floor(Date.now() / 1000),
    model: opts.model ?? DEFAULT_MODEL,
    system_fingerprint: "fp_fake",
    choices: [{ index: 0, message: msg, logprobs: null, finish_reason: opts.finishReason ?? (msg.tool_calls?.length ? "tool_calls" : "stop") }],
    usage,
  };
}

export interface Assembled {
  id: string | undefined;
  model: string | undefined;
  message: AssistantMessage;
  finishReason: FinishReason | null;
  usage: Usage | null;
}
/** Reference accumulator for choice 0 (what a correct client-side assembler must produce). */
export function assembleChunks(chunks: readonly ChatCompletionChunkLike[]): Assembled {
  const msg: AssistantMessage = { role: "assistant", content: null };
  let reasoning: string | undefined;
  let blocks: AnyThinkingBlock[] | undefined;
  const calls: ToolCall[] = [];
  let finishReason: FinishReason | null = null;
  let usage: Usage | null = null;
  for (const c of chunks) {
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.index !== 0) continue;
      if (ch.finish_reason) finishReason = ch.finish_reason;
      const d = ch.delta ?? {};
      if (typeof d.content === "string") msg.content = (msg.content ?? "") + d.content;
      if (typeof d.reasoning_content === "string") reasoning = (reasoning ?? "") + d.reasoning_content;
      for (const b of d.thinking_blocks ?? []) {
        blocks ??= [];
        const last = blocks[blocks.length - 1];
        if (b.type === "thinking" && last?.type === "thinking" && last.signature === undefined) {
          last.thinking += b.thinking;
          if (b.signature !== undefined) last.signature = b.signature;
        } else {
          blocks.push(
            b.type === "thinking"
              ? { type: b.type, thinking: b.thinking, ...(b.signature !== undefined ? { signature: b.signature } : {}) }
              : { type: b.type, data: b.data },
          );
        }
      }
      for (const t of d.tool_calls ?? []) {
        const call = (calls[t.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
        if (t.id) call.id = t.id;
        if (t.function?.name) call.function.name += t.function.name;
        if (t.function?.arguments) call.function.arguments += t.function.arguments;
      }
    }
  }
  if (reasoning !== undefined) msg.reasoning_content = reasoning;
  if (blocks) msg.thinking_blocks = blocks;
  if (calls.length) msg.tool_calls = calls;
  return { id: chunks[0]?.id, model: chunks[0]?.model, message: msg, finishReason, usage };
}
