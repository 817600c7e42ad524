import { audit } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.sessions.cancel, async ({ ctx, principal, params }) => {
  const r = await ctx.engine.cancel({ teamId: principal.teamId, sessionId: params.id });
  await audit(ctx.pool, principal, "session.cancel", params.id, r);
  return r;
});
