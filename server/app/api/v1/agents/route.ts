import { audit, listAgents } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.agents.list, async ({ ctx, principal }) => ({ agents: await listAgents(ctx.pool, principal.teamId) }));

export const POST = route(api.agents.create, async ({ ctx, principal, body }) => {
  const agent = await ctx.tenancy.createAgent(principal, body); // the principal: members may not set protected fields
  await audit(ctx.pool, principal, "agent.create", agent.id, { name: agent.name });
  return json(agent, 201);
});
