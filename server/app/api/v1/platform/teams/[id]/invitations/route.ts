import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const POST = route(api.platform.inviteToTeam, async ({ ctx, principal, params, body }) => {
  return json(await ctx.platform.invite(principal, params.id, { ...body, ttlMs: ctx.env.KEEL_INVITATION_TTL_MS }), 201);
});
