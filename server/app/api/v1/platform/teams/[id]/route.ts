import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const PATCH = route(api.platform.renameTeam, async ({ ctx, principal, params, body }) => ctx.platform.renameTeam(principal, params.id, body));

/** Everything the team owns goes (core/src/access/platform.ts has the order); its audit rows stay. */
export const DELETE = route(api.platform.deleteTeam, async ({ ctx, principal, params, body }) => {
  await ctx.platform.deleteTeam(principal, params.id, body.confirm);
  return json(undefined, 204);
});
