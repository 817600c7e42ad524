import { z } from "zod";
import { audit, decideToolCall } from "@keel/core";
import { route } from "@/src/http";

const Body = z.strictObject({ approve: z.boolean(), reason: z.string().max(2000).optional() });

export const POST = route({ body: Body }, async ({ ctx, principal, params, body }) => {
  const callId = params.callId!.slice(0, 200);
  const r = await decideToolCall(ctx.pool, { teamId: principal.teamId, sessionId: params.id!, callId, approve: body.approve, reason: body.reason, decidedBy: principal.actor });
  await audit(ctx.pool, principal, body.approve ? "tool_call.approve" : "tool_call.deny", params.id!, { callId });
  return r;
});
