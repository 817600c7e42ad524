import { ValidationError } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json } from "@/src/http";
import { bindSession, completionBody, lastUserContent, openaiRoute, runError, SESSION_HEADER, streamCompletion, waitForRun } from "@/src/openai";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const POST = openaiRoute(api.openai.chat, async ({ req, ctx, principal, body, markPosted }) => {
  const content = lastUserContent(body.messages);
  const idempotencyKey = req.headers.get("idempotency-key") ?? undefined;
  // Checked here as well as in core: a refused message must not leave a new, empty session behind.
  if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 200)) throw new ValidationError("idempotency key must be 1 to 200 characters");
  const sessionId = await bindSession(ctx, principal, body.model, req.headers.get(SESSION_HEADER), typeof content === "string" ? content : content[0]!.text);
  // From here an error answer must not invite a blind retry (see openaiRoute): a session may exist
  // and the message may be posted; the answer names the session (x-keel-session-id) to read.
  markPosted();
  const post = () => ctx.engine.postMessage({ teamId: principal.teamId, sessionId, content, onBusy: "enqueue", idempotencyKey });
  if (body.stream) {
    const stream = streamCompletion(ctx, principal, body.model, sessionId, post, req.signal, { includeUsage: body.stream_options?.include_usage === true });
    return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache, no-transform", [SESSION_HEADER]: sessionId } });
  }
  const posted = await post();
  const o = await waitForRun(ctx, principal, sessionId, posted.runId, posted.seq, req.signal);
  if (o.status !== "succeeded" && o.status !== "waiting_approval") throw runError(posted.runId, o, sessionId);
  return json(completionBody(body.model, posted.runId, o), 200, { [SESSION_HEADER]: sessionId, "x-keel-run-status": o.status });
});
