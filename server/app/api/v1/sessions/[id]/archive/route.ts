import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.sessions.archive, async ({ ctx, principal, params, body }) => {
  await ctx.tenancy.setArchived(principal, params.id, body.archived);
  return { id: params.id, archived: body.archived };
});
