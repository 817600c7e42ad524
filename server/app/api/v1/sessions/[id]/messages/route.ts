import { z } from "zod";
import { BUSY_POLICIES } from "@keel/core";
import { json, route } from "@/src/http";

const Part = z.strictObject({ type: z.literal("text"), text: z.string().max(256 * 1024) });
const Body = z.strictObject({
  content: z.union([z.string().min(1).max(256 * 1024), z.array(Part).min(1).max(100)]),
  onBusy: z.enum(BUSY_POLICIES).default("enqueue"),
});

/** 202: the message is in the log and a run will answer it (header Idempotency-Key makes retries safe). */
export const POST = route({ body: Body }, async ({ req, ctx, principal, params, body }) => {
  const idempotencyKey = req.headers.get("idempotency-key") ?? undefined;
  const r = await ctx.engine.postMessage({ teamId: principal.teamId, sessionId: params.id!, content: body.content, onBusy: body.onBusy, idempotencyKey });
  return json({ seq: r.seq, runId: r.runId, disposition: r.disposition, duplicate: r.duplicate }, 202);
});
