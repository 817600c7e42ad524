import { audit, decideToolCall } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.sessions.decide, async ({ ctx, principal, params, body }) => {
  const callId = params.callId;
  const r = await decideToolCall(ctx.pool, { teamId: principal.teamId, sessionId: params.id, callId, approve: body.approve, reason: body.reason, decidedBy: principal.actor });
  await audit(ctx.pool, principal, body.approve ? "tool_call.approve" : "tool_call.deny", params.id, { callId });
  return r;
});
