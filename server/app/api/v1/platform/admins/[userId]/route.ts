import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const DELETE = route(api.platform.revokeAdmin, async ({ ctx, principal, params }) => {
  await ctx.platform.revokeAdmin(principal, params.userId);
  return json(undefined, 204);
});
