// A scripted OpenAI-compatible HTTP server on loopback: the stand-in for the model provider in tests.
// It speaks the real wire protocol (JSON bodies, SSE `data: <json>\n\n` ... `data: [DONE]\n\n`,
// `{error: {...}}` bodies, retry-after headers), so the official `openai` SDK works against it as is.
// Replies come from `handler` (when set and it returns one) or else a FIFO queue; with neither, the
// server answers 500 "fake-openai: no scripted reply left" so a test fails loudly.
import http from "node:http";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { DEFAULT_MODEL, type ChatCompletionChunkLike } from "./openai-chunks.js";

export * from "./openai-chunks.js";

export type ScriptedReply =
  | {
      kind: "stream";
      chunks: ChatCompletionChunkLike[];
      /** wait this long before each chunk */
      delayMs?: number;
      /** destroy the socket after N chunks (no [DONE], no terminating HTTP chunk) */
      dropAfter?: number;
      /** end the response cleanly after N chunks (no finish_reason chunk, no [DONE]): a half-streamed reply */
      endAfter?: number;
      /** stop sending after N chunks, keep the socket open (until the client or close() ends it) */
      hangAfter?: number;
      headers?: Record<string, string>;
    }
  | { kind: "json"; body: object; status?: number; headers?: Record<string, string>; delayMs?: number }
  | { kind: "error"; status: number; body?: object; headers?: Record<string, string>; delayMs?: number }
  | { kind: "hang" }
  | { kind: "drop" };

export interface RecordedRequest {
  method: string;
  /** path without the query string, e.g. /v1/chat/completions */
  path: string;
  /** path with the query string */
  url: string;
  headers: IncomingHttpHeaders;
  /** the body exactly as received (UTF-8) */
  rawBody: string;
  /** the body parsed as JSON; undefined when empty or not JSON */
  json: any;
}

export interface FakeOpenAI {
  /** base URL including /v1, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  /** FIFO of replies for POST requests */
  enqueue(...replies: ScriptedReply[]): void;
  /** decides the reply from the request; takes precedence over the queue unless it returns undefined */
  handler?: ((req: RecordedRequest) => ScriptedReply | undefined) | undefined;
  /** every request, in arrival order (recorded once its body is fully read) */
  readonly requests: RecordedRequest[];
  /** scripted replies not yet used */
  readonly remaining: number;
  /** resolves once at least n requests have arrived; rejects after timeoutMs */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** stops the server and destroys every open socket (hanging ones too) */
  close(): Promise<void>;
}

export interface FakeOpenAIOptions {
  /** model ids GET /v1/models lists besides those seen in scripts and requests */
  models?: string[];
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const queue: ScriptedReply[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  const models = new Set<string>(options.models ?? [DEFAULT_MODEL]);
  let nextRequestId = 0;
  let closed = false;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => (timers.delete(t), resolve()), ms);
      timers.add(t);
    });

  const noteModels = (r: ScriptedReply): void => {
    if (r.kind === "stream") for (const c of r.chunks) if (typeof c.model === "string") models.add(c.model);
    if (r.kind === "json" && typeof (r.body as { model?: unknown }).model === "string") models.add((r.body as { model: string }).model);
  };

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      const rawBody = Buffer.concat(parts).toString("utf8");
      let json: any;
      try {
        json = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        json = undefined;
      }
      const url = req.url ?? "/";
      const recorded: RecordedRequest = { method: req.method ?? "GET", path: url.split("?")[0]!, url, headers: req.headers, rawBody, json };
      requests.push(recorded);
      if (typeof json?.model === "string") models.add(json.model);
      for (const w of [...waiters]) w();
      respond(recorded, req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: `fake-openai: ${String(err)}`, type: "server_error" } });
        else res.destroy();
      });
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      "x-request-id": `req_fake_${++nextRequestId}`,
      ...headers,
    });
    res.end(text);
  }
  const loud = (res: ServerResponse, status: number, message: string): void =>
    // x-should-retry: false keeps the SDK from retrying against a script that has nothing for it
    sendJson(res, status, { error: { message: `fake-openai: ${message}`, type: "fake_openai_error", param: null, code: null } }, { "x-should-retry": "false" });

  async function respond(r: RecordedRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (r.method === "GET" && (r.path === "/v1/models" || r.path.startsWith("/v1/models/"))) {
      const list = [...models].map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: "fake-openai" }));
      if (r.path === "/v1/models") return sendJson(res, 200, { object: "list", data: list });
      const id = decodeURIComponent(r.path.slice("/v1/models/".length));
      const found = list.find((m) => m.id === id);
      return found
        ? sendJson(res, 200, found)
        : sendJson(res, 404, { error: { message: `The model '${id}' does not exist`, type: "invalid_request_error", param: null, code: "model_not_found" } });
    }
    if (r.method !== "POST") return sendJson(res, 404, { error: { message: `fake-openai: no route ${r.method} ${r.path}`, type: "invalid_request_error" } });

    const reply = fake.handler?.(r) ?? queue.shift();
    if (!reply) return loud(res, 500, "no scripted reply left");
    const wantsStream = r.json?.stream === true;
    switch (reply.kind) {
      case "hang":
        return; // the socket stays open until the client gives up or close() destroys it
      case "drop":
        req.socket.destroy();
        return;
      case "json":
      case "error": {
        const status = reply.kind === "json" ? (reply.status ?? 200) : reply.status;
        if (status < 300 && wantsStream) return loud(res, 400, `scripted a JSON reply but the request has stream: true`);
        if (reply.delayMs) await sleep(reply.delayMs);
        if (res.destroyed) return;
        const body = reply.body ?? {
          error: { message: `fake-openai: scripted error ${status}`, type: status === 429 ? "rate_limit_error" : "server_error", param: null, code: null },
        };
        return sendJson(res, status, body, reply.headers);
      }
      case "stream":
        if (!wantsStream) return loud(res, 400, `scripted a stream reply but the request lacks stream: true`);
        return stream(reply, r, res);
    }
  }

  async function stream(reply: Extract<ScriptedReply, { kind: "stream" }>, r: RecordedRequest, res: ServerResponse): Promise<void> {
    const includeUsage = r.json?.stream_options?.include_usage === true;
    const chunks = reply.chunks
      .filter((c) => includeUsage || !(c.choices.length === 0 && c.usage))
      .map((c) => {
        const { usage, ...rest } = c;
        // OpenAI sends `usage: null` on every chunk but the last when include_usage is set
        return includeUsage ? { ...rest, usage: usage ?? null } : rest;
      });
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-request-id": `req_fake_${++nextRequestId}`,
      ...reply.headers,
    });
    res.flushHeaders();
    const write = (text: string): Promise<void> => new Promise((resolve, reject) => res.write(text, (err) => (err ? reject(err) : resolve())));
    for (let i = 0; i <= chunks.length; i++) {
      if (res.destroyed || closed) return;
      if (i === reply.dropAfter) {
        res.socket?.destroy();
        return;
      }
      if (i === reply.hangAfter) return;
      if (i === reply.endAfter) {
        res.end();
        return;
      }
      if (i === chunks.length) break;
      if (reply.delayMs) await sleep(reply.delayMs);
      if (res.destroyed || closed) return;
      await write(`data: ${JSON.stringify(chunks[i])}\n\n`);
    }
    await write("data: [DONE]\n\n");
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const fake: FakeOpenAI = {
    url: `http://127.0.0.1:${port}/v1`,
    handler: undefined,
    requests,
    get remaining() {
      return queue.length;
    },
    enqueue(...replies) {
      for (const r of replies) noteModels(r);
      queue.push(...replies);
    },
    waitForRequests(n, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (requests.length < n) return;
          cleanup();
          resolve(requests);
        };
        const t = setTimeout(() => {
          cleanup();
          reject(new Error(`fake-openai: ${requests.length} request(s) after ${timeoutMs} ms, waited for ${n}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(t);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await done;
    },
  };
  return fake;
}
