import { z } from "zod";
import { AgentConfigSchema, audit, listAgents } from "@keel/core";
import { json, q, route } from "@/src/http";

// mcpServers without its default: left out means "not given" to core's protected-field check.
const CreateBody = z.strictObject({ name: z.string(), ...AgentConfigSchema.shape, model: q.line(200).min(1), mcpServers: AgentConfigSchema.shape.mcpServers.removeDefault().optional() });

export const GET = route({}, async ({ ctx, principal }) => ({ agents: await listAgents(ctx.pool, principal.teamId) }));

export const POST = route({ body: CreateBody }, async ({ ctx, principal, body }) => {
  const agent = await ctx.tenancy.createAgent(principal, body); // the principal: members may not set protected fields
  await audit(ctx.pool, principal, "agent.create", agent.id, { name: agent.name });
  return json(agent, 201);
});
