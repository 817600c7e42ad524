import { audit, deleteAgent, getAgent } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.agents.get, async ({ ctx, principal, params }) => getAgent(ctx.pool, principal.teamId, params.id));

/** Writes a new version; existing sessions keep the version they started with. */
export const PUT = route(api.agents.update, async ({ ctx, principal, params, body }) => {
  const r = await ctx.tenancy.updateAgent(principal, params.id, body); // the principal: members may not change protected fields
  await audit(ctx.pool, principal, "agent.update", r.id, { version: r.version });
  return r;
});

export const DELETE = route(api.agents.delete, async ({ ctx, principal, params }) => {
  await deleteAgent(ctx.pool, principal.teamId, params.id);
  await audit(ctx.pool, principal, "agent.delete", params.id, {});
  return json(undefined, 204);
});
