import { audit } from "@keel/core";
import { route } from "@/src/http";

export const POST = route({}, async ({ ctx, principal, params }) => {
  const r = await ctx.engine.cancel({ teamId: principal.teamId, sessionId: params.id! });
  await audit(ctx.pool, principal, "session.cancel", params.id!, r);
  return r;
});
