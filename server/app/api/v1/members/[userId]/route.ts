import { audit } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const PATCH = route(api.members.setRole, async ({ ctx, principal, params, body }) => {
  const r = await ctx.accounts.setMemberRole(principal, params.userId, body.role);
  await audit(ctx.pool, principal, "member.role", params.userId, { role: body.role, keysRevoked: r.keysRevoked });
  return json(r);
});

export const DELETE = route(api.members.remove, async ({ ctx, principal, params }) => {
  const r = await ctx.accounts.removeMember(principal, params.userId);
  await audit(ctx.pool, principal, "member.remove", params.userId, { keysRevoked: r.keysRevoked });
  return json(undefined, 204);
});
