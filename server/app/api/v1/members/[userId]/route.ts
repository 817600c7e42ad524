import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const PATCH = route(api.members.setRole, async ({ ctx, principal, params, body }) => {
  return json(await ctx.accounts.setMemberRole(principal, params.userId, body.role));
});

export const DELETE = route(api.members.remove, async ({ ctx, principal, params }) => {
  await ctx.accounts.removeMember(principal, params.userId);
  return json(undefined, 204);
});
