import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

/** 202: the message is in the log and a run will answer it (header Idempotency-Key makes retries safe). */
export const POST = route(api.sessions.messages, async ({ req, ctx, principal, params, body, traceparent }) => {
  const idempotencyKey = req.headers.get("idempotency-key") ?? undefined;
  const r = await ctx.engine.postMessage({
    teamId: principal.teamId,
    sessionId: params.id,
    content: body.content,
    onBusy: body.onBusy,
    idempotencyKey,
    traceparent,
  });
  return json({ seq: r.seq, runId: r.runId, disposition: r.disposition, duplicate: r.duplicate }, 202);
});
