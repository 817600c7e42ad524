import { decideToolCall } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.sessions.decide, async ({ ctx, principal, params, body }) =>
  decideToolCall(ctx.pool, { by: principal, sessionId: params.id, callId: params.callId, approve: body.approve, reason: body.reason }),
);
