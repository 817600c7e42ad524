import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const DELETE = route(api.invitations.revoke, async ({ ctx, principal, params }) => {
  await ctx.accounts.revokeInvitation(principal, params.id);
  return json(undefined, 204);
});
