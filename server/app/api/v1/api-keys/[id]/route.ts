import { audit } from "@keel/core";
import { json, route } from "@/src/http";

export const DELETE = route({ role: "admin" }, async ({ ctx, principal, params }) => {
  await ctx.accounts.revokeApiKey(principal, params.id!);
  await audit(ctx.pool, principal, "api_key.revoke", params.id!, {});
  return json(undefined, 204);
});
