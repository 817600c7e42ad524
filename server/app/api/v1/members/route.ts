import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.members.list, async ({ ctx, principal }) => ({ members: await ctx.accounts.listMembers(principal) }));

export const POST = route(api.members.add, async ({ ctx, principal, body }) => {
  return json(await ctx.accounts.addMember(principal, body), 201);
});
