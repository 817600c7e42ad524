// OpenAI-compatible chat completions through the official `openai` SDK, so any compatible
// provider (OpenAI, LiteLLM, vLLM, …) works by base URL. The SDK retries 429/5xx, timeouts and
// connection errors with backoff (maxRetries); what still fails is classified here: a provider
// that refuses the request (4xx other than 408/409/429) cannot be fixed by retrying.
import OpenAI from "openai";
import { PermanentStepError, RetryableStepError } from "../engine/types.js";
import { clipRemoteText as clip, outboundRefusalIn } from "./outbound.js";
import { MessageAccumulator, type ChunkLike, type DeltaSink, type ModelClient, type ModelRequest, type ModelResult } from "./model.js";

/** `fetch`: the outbound policy's (core/src/agent/outbound.ts) for a URL a team chose. */
export type OpenAICompatibleOptions = {
  baseUrl: string;
  apiKey: string;
  maxRetries?: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  fetch?: typeof globalThis.fetch;
};

/**
 * A model call that failed. Retryable ones count an attempt and the run retries after a growing
 * delay (never a hand-back: a provider outage is not a database outage), then fails with
 * code `model_unavailable`.
 */
export class ModelCallError extends RetryableStepError {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, "model_unavailable", options);
    this.name = "ModelCallError";
  }
}

export class OpenAICompatibleModel implements ModelClient {
  private readonly client: OpenAI;
  constructor(o: OpenAICompatibleOptions) {
    this.client = new OpenAI({
      baseURL: o.baseUrl,
      apiKey: o.apiKey || "none",
      maxRetries: o.maxRetries ?? 3,
      timeout: o.timeoutMs ?? 120_000,
      defaultHeaders: o.headers,
      ...(o.fetch ? { fetch: o.fetch } : {}),
    });
  }

  async complete(req: ModelRequest, onDelta: DeltaSink): Promise<ModelResult> {
    const acc = new MessageAccumulator();
    try {
      const body = {
        model: req.model,
        messages: req.messages,
        stream: true as const,
        stream_options: { include_usage: true },
        ...(req.tools.length > 0 ? { tools: req.tools } : {}),
      };
      // Messages carry provider fields (reasoning, thinking blocks) the SDK's types do not list.
      const stream = await this.client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsStreaming, { signal: req.signal });
      for await (const chunk of stream) acc.add(chunk as unknown as ChunkLike, onDelta);
    } catch (err) {
      throw classify(err);
    }
    // A stream that ends without a finish_reason was cut short, however cleanly: what arrived is
    // half an item and must not be stored as the model's final word. Another attempt asks again.
    if (acc.finishReason === null) throw new ModelCallError("the model's stream ended before the reply was finished (no finish_reason)", true);
    return { message: acc.message(), finishReason: acc.finishReason, usage: acc.usage, model: acc.model || req.model };
  }
}

function classify(err: unknown): Error {
  if (err instanceof OpenAI.APIUserAbortError) return err;
  const refused = outboundRefusalIn(err);
  if (refused) return new PermanentStepError(`the agent's provider.baseUrl cannot be used: ${refused.message}`, "outbound_not_allowed");
  if (err instanceof OpenAI.APIError && typeof err.status === "number") {
    const retryable = err.status === 408 || err.status === 409 || err.status === 429 || err.status >= 500;
    const msg = `model provider answered ${err.status}: ${clip(err.message)}`;
    // No `cause`: the SDK's error holds the provider's whole body, and causes reach the logs.
    return retryable ? new ModelCallError(msg, true) : new PermanentStepError(msg, "model_rejected");
  }
  // Connection refused/reset, timeout, a stream cut off mid-way: worth another attempt.
  return new ModelCallError(`model call failed: ${clip((err as Error).message)}`, true, { cause: err });
}
