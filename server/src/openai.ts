// The OpenAI-compatible surface's shapes. The run semantics are core's: the model name addresses
// an agent and X-Keel-Session-Id binds a call to a session, a new one when absent (AgentChat, in
// core/src/agent-chat.ts); the call posts the last user message (the session log already holds the
// earlier turns); RunOutcomes (core/src/engine/run-outcome.ts) waits for the run and sums up its
// answer; DeltaFeed carries its token deltas. Here they become chat.completion bodies and
// chat.completion.chunk events, and errors get OpenAI's fields.
import { KeelError, ValidationError, type RunOutcome } from "@keel/core";
import type { DeltaNotification } from "@keel/core/contract/events";
import type { Context } from "./context";
import type { ApiRoute } from "@keel/core/contract/api";
import { json, route, type CallOf } from "./http";

export const SESSION_HEADER = "x-keel-session-id";

/** An agent as an OpenAI model object (the model name addresses the agent). */
export function modelObject(a: { name: string; createdAt: Date | string }) {
  return { id: a.name, object: "model", created: Math.floor(new Date(a.createdAt).getTime() / 1000), owned_by: "keel" };
}

/** The same bound as POST /sessions/{id}/messages, checked before a session is created. */
export const MAX_MESSAGE_CHARS = 256 * 1024;

export function lastUserContent(messages: { role: string; content?: unknown }[]): string | { type: "text"; text: string }[] {
  const m = [...messages].reverse().find((x) => x.role === "user");
  if (!m) throw new ValidationError("messages must contain a user message");
  let out: string | { type: "text"; text: string }[] | null = null;
  if (typeof m.content === "string" && m.content.length > 0) out = m.content;
  if (Array.isArray(m.content)) {
    const parts = m.content.filter(
      (x): x is { type: "text"; text: string } => typeof x === "object" && x !== null && x.type === "text" && typeof x.text === "string",
    );
    if (parts.length) out = parts.map((x) => ({ type: "text", text: x.text }));
  }
  if (out === null) throw new ValidationError("the last user message has no text content");
  const chars = typeof out === "string" ? out.length : out.reduce((n, p) => n + p.text.length, 0);
  if (chars > MAX_MESSAGE_CHARS)
    throw new ValidationError(`the last user message is longer than ${MAX_MESSAGE_CHARS} characters`, { maxChars: MAX_MESSAGE_CHARS });
  return out;
}

/** A run's token usage in OpenAI's shape. */
export function openaiUsage(o: RunOutcome) {
  return { prompt_tokens: o.usage.promptTokens, completion_tokens: o.usage.completionTokens, total_tokens: o.usage.promptTokens + o.usage.completionTokens };
}

export function completionBody(model: string, runId: string, o: RunOutcome) {
  return {
    id: `chatcmpl-${runId}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: "assistant", content: o.content, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: openaiUsage(o),
  };
}

export function runError(runId: string, o: RunOutcome, sessionId: string): KeelError {
  return new KeelError("run_" + o.status, 502, o.error ?? `the run ended ${o.status}`, { runId, sessionId, status: o.status });
}

/** OpenAI's error `type` for a status (clients branch on it); Keel's code, message, details stay. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** An error in both shapes: Keel's `{error:{code,message,details}}` plus OpenAI's `type` and `param`. */
export function openaiErrorBody(status: number, code: string, message: string, details: object = {}) {
  return { error: { message, type: errorType(status), param: null, code, details } };
}

/**
 * `route()` for the OpenAI-compatible paths. Errors get OpenAI's fields. And once a call has
 * posted its message (`c.markPosted()`), an error answer carries `x-should-retry: false`: the SDKs
 * retry 5xx and timeouts by default, and each retry without a session header started a new
 * session and a new run (one SDK call made three; side-effecting tools would run three times).
 */
export function openaiRoute<R extends ApiRoute>(spec: R, handler: (c: CallOf<R> & { markPosted: () => void }) => Promise<Response | unknown>) {
  return async (req: Request, routeCtx: { params: Promise<Record<string, string>> }): Promise<Response> => {
    let posted = false;
    const res = await route(spec, (c) => handler({ ...c, markPosted: () => void (posted = true) }))(req, routeCtx);
    if (res.status < 400) return res;
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string; details?: object } } | null;
    const headers: Record<string, string> = Object.fromEntries(res.headers);
    if (posted) headers["x-should-retry"] = "false";
    delete headers["content-length"];
    return json(
      openaiErrorBody(res.status, body?.error?.code ?? "internal", body?.error?.message ?? "internal error", body?.error?.details ?? {}),
      res.status,
      headers,
    );
  };
}

/** Streams content deltas of one run as chat.completion.chunk SSE, then the tail the deltas missed, then [DONE]. */
export function streamCompletion(
  ctx: Context,
  teamId: string,
  model: string,
  sessionId: string,
  post: () => Promise<{ runId: string; seq: bigint }>,
  signal: AbortSignal,
  opts: { includeUsage?: boolean } = {},
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const early: DeltaNotification[] = [];
      let runId: string | null = null;
      let sent = "";
      const created = Math.floor(Date.now() / 1000);
      // stream_options.include_usage: every chunk carries `usage: null`, and one last chunk with no
      // choices carries the run's usage (OpenAI's shape; the SDK's usage helpers read it).
      const send = (o: object) =>
        controller.enqueue(enc.encode(`data: ${JSON.stringify({ id: `chatcmpl-${runId}`, object: "chat.completion.chunk", created, model, ...o })}\n\n`));
      const chunk = (delta: object, finish: string | null = null) =>
        send({ choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(opts.includeUsage ? { usage: null } : {}) });
      const relay = (m: DeltaNotification) => {
        if (m.runId !== runId || !m.delta.content) return;
        sent += m.delta.content;
        chunk({ content: m.delta.content });
      };
      // Subscribed before posting, so no delta of this run is missed; buffered until its id is known.
      const off = ctx.deltas.subscribe(sessionId, (m) => (runId ? relay(m) : early.push(m)));
      try {
        const posted = await post();
        runId = posted.runId;
        chunk({ role: "assistant", content: "" });
        early.forEach(relay);
        const o = await ctx.runs.wait({ teamId, sessionId, runId: posted.runId, afterSeq: posted.seq, signal });
        if (o.status !== "succeeded" && o.status !== "waiting_approval") {
          controller.enqueue(
            enc.encode(`data: ${JSON.stringify({ error: { message: o.error ?? `the run ended ${o.status}`, type: "run_" + o.status, code: null } })}\n\n`),
          );
        } else {
          // NOTIFY is best effort: send whatever text the deltas did not carry.
          if (o.allContent.startsWith(sent) && o.allContent.length > sent.length) chunk({ content: o.allContent.slice(sent.length) });
          chunk({}, "stop");
          if (opts.includeUsage) send({ choices: [], usage: openaiUsage(o) });
        }
        controller.enqueue(enc.encode("data: [DONE]\n\n"));
      } catch (err) {
        const message = err instanceof KeelError ? err.message : "internal error";
        if (!(err instanceof KeelError)) ctx.logger.error({ err, sessionId }, "chat completion stream failed");
        controller.enqueue(
          enc.encode(`data: ${JSON.stringify({ error: { message, type: err instanceof KeelError ? err.code : "internal", code: null } })}\n\n`),
        );
      } finally {
        off();
        try {
          controller.close();
        } catch {
          /* client gone */
        }
      }
    },
  });
}
