import { getSessionRow } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.sessions.get, async ({ ctx, principal, params }) => getSessionRow(ctx.pool, principal.teamId, params.id));

export const DELETE = route(api.sessions.delete, async ({ ctx, principal, params }) => {
  await ctx.tenancy.deleteSession(principal, params.id);
  return json(undefined, 204);
});
