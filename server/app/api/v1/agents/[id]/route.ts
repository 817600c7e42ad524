import { getAgent } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.agents.get, async ({ ctx, principal, params }) => getAgent(ctx.pool, principal.teamId, params.id));

/** Writes a new version; existing sessions keep the version they started with. Members may not change protected fields. */
export const PUT = route(api.agents.update, async ({ ctx, principal, params, body }) => ctx.tenancy.updateAgent(principal, params.id, body));

export const DELETE = route(api.agents.delete, async ({ ctx, principal, params }) => {
  await ctx.tenancy.deleteAgent(principal, params.id);
  return json(undefined, 204);
});
