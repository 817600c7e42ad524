import { audit } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.members.list, async ({ ctx, principal }) => ({ members: await ctx.accounts.listMembers(principal) }));

export const POST = route(api.members.add, async ({ ctx, principal, body }) => {
  const r = await ctx.accounts.addMember(principal, body);
  await audit(ctx.pool, principal, "member.add", r.userId, { email: body.email, role: body.role });
  return json(r, 201);
});
