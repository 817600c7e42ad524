import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const DELETE = route(api.apiKeys.revoke, async ({ ctx, principal, params }) => {
  await ctx.accounts.revokeApiKey(principal, params.id);
  return json(undefined, 204);
});
