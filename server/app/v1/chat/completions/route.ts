import { api } from "@keel/core/contract/api";
import { json } from "@/src/http";
import { completionBody, lastUserContent, openaiRoute, runError, SESSION_HEADER, streamCompletion } from "@/src/openai";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const POST = openaiRoute(api.openai.chat, async ({ req, ctx, principal, body, markPosted, traceparent }) => {
  const content = lastUserContent(body.messages);
  const idempotencyKey = req.headers.get("idempotency-key") ?? undefined;
  const chat = await ctx.chat.open(principal, { agent: body.model, sessionId: req.headers.get(SESSION_HEADER), content, idempotencyKey, traceparent });
  // From here an error answer must not invite a blind retry (see openaiRoute): a session may exist
  // and the message may be posted; the answer names the session (x-keel-session-id) to read.
  markPosted();
  const { sessionId } = chat;
  if (body.stream) {
    const stream = streamCompletion(ctx, principal.teamId, body.model, sessionId, chat.post, req.signal, {
      includeUsage: body.stream_options?.include_usage === true,
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache, no-transform", [SESSION_HEADER]: sessionId },
    });
  }
  const posted = await chat.post();
  const o = await ctx.runs.wait({ teamId: principal.teamId, sessionId, runId: posted.runId, afterSeq: posted.seq, signal: req.signal });
  if (o.status !== "succeeded" && o.status !== "waiting_approval") throw runError(posted.runId, o, sessionId);
  return json(completionBody(body.model, posted.runId, o), 200, { [SESSION_HEADER]: sessionId, "x-keel-run-status": o.status });
});
