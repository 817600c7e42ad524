import { afterEach, beforeEach, describe, expect, test } from "vitest";
// The official SDK is not installed in this repo; MiniOpenAI mirrors its surface and wire behaviour.
// With the SDK installed, this line becomes: import OpenAI from "openai";
import OpenAI from "openai";
import {
  assembleChunks,
  assistantMessage,
  completionJson,
  reasoningStream,
  startFakeOpenAI,
  textStream,
  toolCallStream,
  type ChatCompletionChunkLike,
  type FakeOpenAI,
  type MessageSpec,
} from "./fake-openai.js";

let fake: FakeOpenAI;
beforeEach(async () => {
  fake = await startFakeOpenAI();
});
afterEach(async () => {
  await fake.close();
});

const client = (opts: { maxRetries?: number; timeout?: number } = {}) =>
  new OpenAI({ baseURL: fake.url, apiKey: "sk-test", maxRetries: opts.maxRetries ?? 0, timeout: opts.timeout ?? 5_000 });
const params = (extra: Record<string, unknown> = {}) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content: "hi" }],
  stream: true as const,
  ...extra,
});
/** Iterates a stream, keeping every chunk received before an error (returned alongside it). */
async function collect(stream: AsyncIterable<unknown>): Promise<{ chunks: ChatCompletionChunkLike[]; error?: unknown }> {
  const chunks: ChatCompletionChunkLike[] = [];
  try {
    for await (const c of stream) chunks.push(c as ChatCompletionChunkLike);
    return { chunks };
  } catch (error) {
    return { chunks, error };
  }
}

describe("streaming", () => {
  test("text over several chunks assembles; usage chunk only with include_usage", async () => {
    const text = "Hello, wörld 👋 — this is split.";
    fake.enqueue({ kind: "stream", chunks: textStream(text, { chunkSize: 5 }) }, { kind: "stream", chunks: textStream(text) });
    const c = client();
    const withUsage = await collect(await c.chat.completions.create(params({ stream_options: { include_usage: true } })));
    expect(withUsage.error).toBeUndefined();
    expect(withUsage.chunks.filter((ch) => ch.choices[0]?.delta.content).length).toBeGreaterThan(3);
    const a = assembleChunks(withUsage.chunks);
    expect(a.message).toEqual({ role: "assistant", content: text });
    expect(a.finishReason).toBe("stop");
    expect(a.usage).toMatchObject({ prompt_tokens: 11, total_tokens: expect.any(Number) });
    expect(withUsage.chunks.at(-1)).toMatchObject({ object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 11 } });
    expect(withUsage.chunks.slice(0, -1).every((ch) => ch.usage === null)).toBe(true);

    const noUsage = await collect(await c.chat.completions.create(params()));
    expect(assembleChunks(noUsage.chunks).message.content).toBe(text);
    expect(noUsage.chunks.every((ch) => ch.choices.length === 1 && !("usage" in ch))).toBe(true);
  });

  test.each([false, true])("parallel tool calls with split arguments assemble into valid JSON (interleave: %s)", async (interleave) => {
    const calls = [
      { id: "call_a", name: "get_weather", args: JSON.stringify({ city: "Zürich", unit: "c" }) },
      { id: "call_b", name: "search", args: JSON.stringify({ q: 'say "hi"\n', limit: 3 }) },
    ];
    const chunks = toolCallStream(calls, { splitArgsInto: 4, interleave });
    fake.enqueue({ kind: "stream", chunks });
    const got = await collect(await client().chat.completions.create(params()));
    expect(got.error).toBeUndefined();
    // some chunks carry only an arguments fragment (no id, no name)
    const fragmentOnly = got.chunks.flatMap((ch) => ch.choices[0]?.delta.tool_calls ?? []).filter((t) => t.id === undefined);
    expect(fragmentOnly.length).toBe(8);
    expect(fragmentOnly.every((t) => Object.keys(t.function).join() === "arguments")).toBe(true);
    const a = assembleChunks(got.chunks);
    expect(a.finishReason).toBe("tool_calls");
    expect(a.message.content).toBeNull();
    expect(a.message.tool_calls?.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)])).toEqual(
      calls.map((c) => [c.id, c.name, JSON.parse(c.args)]),
    );
  });

  const specs: [string, MessageSpec][] = [
    ["reasoning_content (DeepSeek/vLLM)", { reasoningContent: "Let me think… 2+2 is 4.", text: "4" }],
    [
      "thinking_blocks with signatures (LiteLLM/Anthropic)",
      {
        thinkingBlocks: [
          { type: "thinking", thinking: "First, the weather tool.", signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3h==" },
          { type: "thinking", thinking: "Then search.", signature: "Sig/2+=" },
        ],
        toolCalls: [{ id: "call_1", name: "get_weather", args: '{"city":"Oslo"}' }],
      },
    ],
  ];
  test.each(specs)("%s: extra fields survive in the chunks; assembly equals the message byte for byte", async (_, spec) => {
    fake.enqueue({ kind: "stream", chunks: reasoningStream(spec, { chunkSize: 6 }) });
    const got = await collect(await client().chat.completions.create(params()));
    expect(got.error).toBeUndefined();
    const deltas = got.chunks.map((ch) => ch.choices[0]?.delta ?? {});
    expect(deltas.filter((d) => typeof d.reasoning_content === "string").length).toBeGreaterThan(1);
    if (spec.thinkingBlocks) {
      expect(deltas.filter((d) => d.thinking_blocks?.[0]?.type === "thinking" && "signature" in d.thinking_blocks[0]).length).toBe(2);
    } else {
      expect(deltas.some((d) => d.content === null && typeof d.reasoning_content === "string")).toBe(true);
    }
    expect(JSON.stringify(assembleChunks(got.chunks).message)).toBe(JSON.stringify(assistantMessage(spec)));
  });
});

describe("non-streamed", () => {
  test("completion JSON keeps reasoning_content and thinking_blocks", async () => {
    const spec: MessageSpec = {
      thinkingBlocks: [
        { type: "thinking", thinking: "hmm", signature: "s1" },
        { type: "redacted_thinking", data: "opaque==" },
      ],
      text: "done",
    };
    const body = completionJson(spec, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    fake.enqueue({ kind: "json", body });
    const res = (await client().chat.completions.create(params({ stream: false }))) as unknown as OpenAI.ChatCompletion;
    expect(res).toEqual(body);
    expect(res.choices[0]!.message).toEqual({
      role: "assistant",
      content: "done",
      reasoning_content: "hmm",
      thinking_blocks: [
        { type: "thinking", thinking: "hmm", signature: "s1" },
        { type: "redacted_thinking", data: "opaque==" },
      ],
    });
  });
});

describe("failures and retries", () => {
  test("429 with retry-after is retried after the delay, then succeeds", async () => {
    fake.enqueue(
      {
        kind: "error",
        status: 429,
        headers: { "retry-after": "1" },
        body: { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } },
      },
      { kind: "stream", chunks: textStream("ok") },
    );
    const t0 = Date.now();
    const got = await collect(await client({ maxRetries: 2 }).chat.completions.create(params()));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(assembleChunks(got.chunks).message.content).toBe("ok");
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]!.rawBody).toBe(fake.requests[0]!.rawBody);
  });

  test("500 then success", async () => {
    fake.enqueue({ kind: "error", status: 500, headers: { "retry-after-ms": "10" } }, { kind: "json", body: completionJson({ text: "fine" }) });
    const res = (await client({ maxRetries: 1 }).chat.completions.create(params({ stream: false }))) as unknown as OpenAI.ChatCompletion;
    expect(res.choices[0]!.message.content).toBe("fine");
    expect(fake.requests).toHaveLength(2);
  });

  test("a status error without retries surfaces the error body", async () => {
    fake.enqueue({ kind: "error", status: 400, body: { error: { message: "bad tool schema", type: "invalid_request_error" } } });
    const err = await client()
      .chat.completions.create(params())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ status: 400, error: { message: "bad tool schema" } });
  });

  test("hang → the client's timeout error", async () => {
    fake.enqueue({ kind: "hang" });
    const err = await client({ timeout: 150 })
      .chat.completions.create(params())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(fake.requests).toHaveLength(1);
  });

  test("drop mid-stream → iteration throws after the chunks that were sent", async () => {
    const chunks = textStream("abcdefghijklmnop", { chunkSize: 2 });
    fake.enqueue({ kind: "stream", chunks, dropAfter: 3, delayMs: 5 });
    const got = await collect(await client().chat.completions.create(params()));
    expect(got.error).toBeInstanceOf(Error);
    expect(got.chunks).toHaveLength(3);
    expect(assembleChunks(got.chunks).message.content).toBe("abcd");
  });

  test("drop before answering → connection error", async () => {
    fake.enqueue({ kind: "drop" });
    const err = await client()
      .chat.completions.create(params())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  test("hangAfter keeps the socket open; close() ends it and the iteration throws", async () => {
    fake.enqueue({ kind: "stream", chunks: textStream("abcdefgh", { chunkSize: 2 }), hangAfter: 2 });
    const stream = await client().chat.completions.create(params());
    const chunks: unknown[] = [];
    const done = (async () => {
      for await (const c of stream) {
        chunks.push(c);
        if (chunks.length === 2) void fake.close();
      }
    })();
    await expect(done).rejects.toThrow();
    expect(chunks).toHaveLength(2);
  });

  test("no scripted reply left → loud 500", async () => {
    const err = await client({ maxRetries: 2 })
      .chat.completions.create(params())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 500, error: { message: "fake-openai: no scripted reply left" } });
    expect(fake.requests).toHaveLength(1); // x-should-retry: false
  });
});

describe("recording and routing", () => {
  test("requests[].rawBody is exactly what was sent; json is parsed", async () => {
    fake.enqueue({ kind: "stream", chunks: textStream("x") });
    const body = params({ tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }], temperature: 0.5 });
    await collect(await client().chat.completions.create(body));
    const [r] = fake.requests;
    expect(r).toMatchObject({ method: "POST", path: "/v1/chat/completions" });
    expect(r!.rawBody).toBe(JSON.stringify(body));
    expect(r!.json).toEqual(body);
    expect(r!.headers.authorization).toBe("Bearer sk-test");
  });

  test("handler takes precedence over the queue and sees the parsed request", async () => {
    fake.enqueue({ kind: "json", body: completionJson({ text: "from queue" }) });
    fake.handler = (req) => (req.json.messages[0].content === "route me" ? { kind: "json", body: completionJson({ text: "from handler" }) } : undefined);
    const c = client();
    const a = (await c.chat.completions.create(
      params({ stream: false, messages: [{ role: "user", content: "route me" }] }),
    )) as unknown as OpenAI.ChatCompletion;
    const b = (await c.chat.completions.create(params({ stream: false }))) as unknown as OpenAI.ChatCompletion;
    expect([a.choices[0]!.message.content, b.choices[0]!.message.content]).toEqual(["from handler", "from queue"]);
    expect(fake.remaining).toBe(0);
  });

  test("GET /v1/models lists the models seen in scripts and requests", async () => {
    fake.enqueue({ kind: "stream", chunks: textStream("x", { model: "deepseek-reasoner" }) });
    await collect(await client().chat.completions.create(params({ model: "claude-sonnet-4" })));
    const list = await client().models.list();
    expect(list.data.map((m) => m.id).sort()).toEqual(["claude-sonnet-4", "deepseek-reasoner", "gpt-4o-mini"]);
  });

  test("a stream script answering a non-stream request fails loudly", async () => {
    fake.enqueue({ kind: "stream", chunks: textStream("x") });
    const err = await client()
      .chat.completions.create(params({ stream: false }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, error: { message: expect.stringContaining("lacks stream: true") } });
  });
});
