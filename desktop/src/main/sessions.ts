// Sessions of a Keel web process, for the desktop main process: connect by base URL + API key,
// list sessions (cursor pages), read a session's whole log, follow it live over SSE (resuming
// with Last-Event-ID after a dropped connection), approve or deny tool calls. Plain Node (global
// fetch), no Electron: tests run it against a real `next start`.
//
// The API key stays here; the renderer holds only a connection id. The base URL is the seam for
// the port-forward to keel-web: whoever forwards connects to the local address it got.
import { randomUUID } from "node:crypto";
import { backoffMs } from "@keel/core/backoff";
import { parseDeltaFrame } from "@keel/core/contract/events";
import { api, type ApiRoute } from "@keel/core/contract/api";
import { ApiClient, ApiError, type CallInput, type CallOutput } from "@keel/core/contract/api-client";
import type {
  Emit,
  ErrorInfo,
  FollowState,
  Handlers,
  KeelConnection,
  KeelEvent,
  KeelSessionInfo,
  PostResult,
  SessionHistory,
  SessionPage,
} from "../shared/contract.ts";

/** `code`: the server's `error.code` unchanged when it answered with Keel's error body, else one of the desktop's own. */
export class KeelApiError extends Error {
  override readonly name = "KeelApiError";
  constructor(
    readonly code: ErrorInfo["code"],
    message: string,
    readonly status?: number,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options);
    this.details = options?.details;
  }
  readonly details: Record<string, unknown> | undefined;
}

const HISTORY_PAGE = 1000;

export type KeelClientOptions = { baseUrl: string; apiKey: string; timeoutMs?: number };

/** One Keel web process, one API key. Every failure becomes a KeelApiError naming what to fix. */
export class KeelClient {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  /** The API's typed client (the route table's schemas); its transport is `send` below. */
  private readonly api: ApiClient;
  constructor(o: KeelClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, "");
    this.apiKey = o.apiKey;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.api = new ApiClient({
      baseUrl: this.baseUrl,
      credentials: { apiKey: this.apiKey },
      fetch: (url, init) => this.send(url, init, (init.headers as Record<string, string>).accept === "text/event-stream"),
    });
  }

  /** One table route through the typed client; an answer that is not JSON names what to check. */
  async call<R extends ApiRoute>(route: R, input?: CallInput<R>): Promise<CallOutput<R>> {
    try {
      return await this.api.call(route, input);
    } catch (err) {
      // Non-2xx answers are KeelApiError already (the transport); this is a 2xx that is not JSON.
      if (err instanceof ApiError && err.code === "bad_response")
        throw new KeelApiError("keel_api_error", `${this.baseUrl}${route.path} did not answer JSON: is this a Keel web process?`, err.status, { cause: err });
      throw err;
    }
  }

  /** The transport: a deadline (none for streams), network failures and non-2xx answers as KeelApiError. */
  private async send(url: string, init: RequestInit, stream: boolean): Promise<Response> {
    // Streams have no overall deadline (they live for hours); the caller's idle timer covers them.
    const signal = stream ? (init.signal ?? undefined) : AbortSignal.any([AbortSignal.timeout(this.timeoutMs), ...(init.signal ? [init.signal] : [])]);
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === "TimeoutError" ? `no answer within ${this.timeoutMs} ms` : (e.cause?.message ?? e.message);
      throw new KeelApiError(
        "keel_unreachable",
        `cannot reach Keel at ${this.baseUrl}: ${why}. Check the URL (the web process listens on port 3000 by default) or that the port-forward is running`,
        undefined,
        { cause: err },
      );
    }
    if (res.ok) return res;
    throw await apiError(res, this.baseUrl);
  }

  me() {
    return this.call(api.me.get);
  }

  listSessions(f: { cursor?: string; limit?: number; status?: string; q?: string } = {}): Promise<SessionPage> {
    const { limit, status, ...rest } = f;
    return this.call(api.sessions.list, {
      query: { ...rest, limit: limit === undefined ? undefined : String(limit), status: (status || undefined) as "active" | "idle" | "archived" | undefined },
    });
  }

  /** The session's live SSE stream (resumes after Last-Event-ID). */
  stream(sessionId: string, o: { lastEventId?: string; signal?: AbortSignal } = {}): Promise<Response> {
    return this.api.send(api.sessions.stream, {
      params: { id: sessionId },
      headers: o.lastEventId ? { "last-event-id": o.lastEventId } : {},
      signal: o.signal,
    });
  }

  /** The session with its agent's name, in one request. */
  async getSession(id: string): Promise<KeelSessionInfo> {
    const s = await this.call(api.sessions.get, { params: { id } });
    return {
      id: s.id,
      agentId: s.agentId,
      agentName: s.agentName,
      agentVersion: s.agentVersion,
      title: s.title,
      status: s.status,
      lastSeq: String(s.lastSeq),
      createdAt: s.createdAt,
    };
  }

  async events(id: string, after: string, limit = HISTORY_PAGE): Promise<{ events: KeelEvent[]; lastSeq: string | null }> {
    return this.call(api.sessions.events, { params: { id }, query: { after, limit: String(limit) } });
  }

  /** The whole log, page by page (seq order, each once). */
  async history(id: string): Promise<SessionHistory> {
    const session = await this.getSession(id);
    const events: KeelEvent[] = [];
    let after = "0";
    for (;;) {
      const page = await this.events(id, after);
      events.push(...page.events);
      if (page.events.length < HISTORY_PAGE || page.lastSeq === null) break;
      after = page.lastSeq;
    }
    return { session, events };
  }

  async post(input: { sessionId: string; content: string; onBusy?: "enqueue" | "reject" | "interrupt" }): Promise<PostResult> {
    const r = await this.call(api.sessions.messages, {
      params: { id: input.sessionId },
      body: { content: input.content, ...(input.onBusy ? { onBusy: input.onBusy } : {}) },
    });
    return { seq: String(r.seq), runId: r.runId, disposition: r.disposition, duplicate: r.duplicate };
  }

  async decide(input: { sessionId: string; callId: string; approve: boolean; reason?: string }): Promise<{ runId: string; seq: string }> {
    const r = await this.call(api.sessions.decide, {
      params: { id: input.sessionId, callId: input.callId },
      body: { approve: input.approve, ...(input.reason ? { reason: input.reason } : {}) },
    });
    return { runId: r.runId, seq: String(r.seq) };
  }
}

/**
 * The server's `{ error: { code, message, details } }` travels unchanged (session_busy,
 * already_decided, …: the renderer shows the code); 401 and 403 add what to do about it. An
 * answer without that body (a proxy, not Keel) is `keel_api_error` with the status.
 */
async function apiError(res: Response, baseUrl: string): Promise<KeelApiError> {
  type ErrorBody = { error?: { code?: unknown; message?: unknown; details?: unknown } } | null;
  let body: ErrorBody = null;
  try {
    body = (await res.json()) as ErrorBody;
  } catch {
    /* not a Keel error body */
  }
  const s = res.status;
  const e = body?.error;
  if (!e || typeof e.code !== "string") return new KeelApiError("keel_api_error", `Keel at ${baseUrl} answered ${s}: HTTP ${s}`, s);
  const message = typeof e.message === "string" ? e.message : `HTTP ${s}`;
  const details = typeof e.details === "object" && e.details !== null ? (e.details as Record<string, unknown>) : {};
  const text =
    s === 401
      ? `Keel at ${baseUrl} rejected the API key: ${message}. Check the key, or create one in the dashboard under Settings → API keys`
      : s === 403
        ? `the API key's role may not do this (${message}): use a key with a higher role`
        : message;
  return new KeelApiError(e.code, text, s, { details });
}

export type SseFrame = { id: string | null; event: string; data: string };

/** Splits an SSE byte stream into frames (comments and retry lines dropped). */
export async function* sseFrames(body: ReadableStream<Uint8Array>, onBytes: () => void = () => {}): AsyncGenerator<SseFrame> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    onBytes();
    buf += dec.decode(chunk, { stream: true }).replace(/\r\n?/g, "\n");
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const f: SseFrame = { id: null, event: "message", data: "" };
      const data: string[] = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
        if (field === "id") f.id = value;
        else if (field === "event") f.event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length || f.id !== null) yield { ...f, data: data.join("\n") };
    }
  }
}

export type SessionsOptions = {
  emit: Emit;
  timeoutMs?: number;
  /** Reconnect backoff of a followed stream. */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** No byte (not even a heartbeat) for this long: the connection is dead, reconnect. */
  idleTimeoutMs?: number;
};

type Follow = { id: string; sessionId: string; connection: string; abort: AbortController; done: Promise<void> };

/** Connections and live follows of the app; `handlers()` are the contract's sessions:* channels. */
export class SessionsService {
  private readonly clients = new Map<string, KeelClient>();
  private readonly follows = new Map<string, Follow>();
  constructor(private readonly o: SessionsOptions) {}

  async connect(input: { baseUrl: string; apiKey: string }): Promise<KeelConnection> {
    const client = new KeelClient({ ...input, timeoutMs: this.o.timeoutMs });
    const me = await client.me();
    const id = randomUUID();
    this.clients.set(id, client);
    return { id, baseUrl: client.baseUrl, teamId: me.teamId, role: me.role, actor: me.actor };
  }

  async disconnect(connection: string): Promise<{ disconnected: boolean }> {
    for (const f of [...this.follows.values()]) if (f.connection === connection) await this.unfollow(f.id);
    return { disconnected: this.clients.delete(connection) };
  }

  client(connection: string): KeelClient {
    const c = this.clients.get(connection);
    if (!c) throw new KeelApiError("not_connected", "not connected to Keel (the app restarted or you disconnected): connect again with the URL and API key");
    return c;
  }

  follow(input: { connection: string; sessionId: string; after?: string }): { followId: string } {
    const client = this.client(input.connection);
    const id = randomUUID();
    const abort = new AbortController();
    const f: Follow = { id, sessionId: input.sessionId, connection: input.connection, abort, done: Promise.resolve() };
    f.done = this.runFollow(client, f, input.after ?? "0");
    this.follows.set(id, f);
    return { followId: id };
  }

  async unfollow(followId: string): Promise<{ stopped: boolean }> {
    const f = this.follows.get(followId);
    if (!f) return { stopped: false };
    this.follows.delete(followId);
    f.abort.abort();
    await f.done;
    return { stopped: true };
  }

  /** Stops every follow (app quit, bridge stop). */
  async close(): Promise<void> {
    await Promise.all([...this.follows.keys()].map((id) => this.unfollow(id)));
    this.clients.clear();
  }

  private async runFollow(client: KeelClient, f: Follow, after: string): Promise<void> {
    const { emit } = this.o;
    let lastSeq = BigInt(after);
    const state = (s: FollowState["state"], error: string | null = null) =>
      emit("sessions:follow:state", { followId: f.id, sessionId: f.sessionId, state: s, lastSeq: String(lastSeq), error });
    const signal = f.abort.signal;
    let attempt = 0;
    let error: string | null = null;
    while (!signal.aborted) {
      state(attempt === 0 ? "connecting" : "reconnecting", error);
      const attemptAbort = new AbortController();
      const onAbort = () => attemptAbort.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      let idle: ReturnType<typeof setTimeout> | undefined;
      const idleMs = this.o.idleTimeoutMs ?? 45_000;
      const touch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => attemptAbort.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
      };
      try {
        touch();
        const res = await client.stream(f.sessionId, { signal: attemptAbort.signal, lastEventId: lastSeq > 0n ? String(lastSeq) : undefined });
        state("live");
        attempt = 0;
        error = null;
        for await (const frame of sseFrames(res.body!, touch)) {
          if (frame.event === "delta") {
            const d = parseDeltaFrame(frame.data);
            if (d) emit("sessions:delta", { followId: f.id, sessionId: f.sessionId, runId: d.runId ?? null, delta: d.delta });
          } else if (frame.id !== null && /^\d+$/.test(frame.id) && BigInt(frame.id) > lastSeq) {
            // The server sends in seq order from after Last-Event-ID; anything not newer was delivered.
            lastSeq = BigInt(frame.id);
            // Parsed with the contract by the renderer's view; text that is not JSON stays text (an invalid event there).
            const event: KeelEvent = { seq: frame.id, type: frame.event, runId: null, createdAt: null, payload: safeJson(frame.data) };
            emit("sessions:event", { followId: f.id, sessionId: f.sessionId, event });
          }
        }
        error = "the server closed the stream";
      } catch (err) {
        if (signal.aborted) break;
        // A session that is gone or a key that was revoked will not come back by retrying.
        if (err instanceof KeelApiError && err.status !== undefined && [400, 401, 403, 404, 422].includes(err.status)) {
          clearTimeout(idle);
          signal.removeEventListener("abort", onAbort);
          this.follows.delete(f.id);
          state("closed", err.message);
          return;
        }
        error = attemptAbort.signal.aborted ? String((attemptAbort.signal.reason as Error)?.message ?? "aborted") : (err as Error).message;
      } finally {
        clearTimeout(idle);
        signal.removeEventListener("abort", onAbort);
        attemptAbort.abort();
      }
      if (signal.aborted) break;
      attempt++;
      await sleep(backoffMs(attempt, this.o.reconnectBaseMs ?? 500, this.o.reconnectMaxMs ?? 10_000), signal);
    }
    state("closed", null);
  }

  handlers(): Pick<
    Handlers,
    | "sessions:connect"
    | "sessions:disconnect"
    | "sessions:list"
    | "sessions:history"
    | "sessions:follow"
    | "sessions:unfollow"
    | "sessions:decide"
    | "sessions:post"
  > {
    return {
      "sessions:connect": (input) => this.connect(input),
      "sessions:disconnect": ({ connection }) => this.disconnect(connection),
      "sessions:list": async ({ connection, ...f }) => this.client(connection).listSessions(f),
      "sessions:history": async ({ connection, sessionId }) => this.client(connection).history(sessionId),
      "sessions:follow": async (input) => this.follow(input),
      "sessions:unfollow": ({ followId }) => this.unfollow(followId),
      "sessions:decide": async ({ connection, ...d }) => this.client(connection).decide(d),
      "sessions:post": async ({ connection, ...m }) => this.client(connection).post(m),
    };
  }
}

/** The parsed JSON, or the text itself when it is not JSON. */
function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
