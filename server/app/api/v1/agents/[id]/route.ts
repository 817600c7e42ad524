import { z } from "zod";
import { AgentConfigSchema, audit, deleteAgent, getAgent } from "@keel/core";
import { json, q, route } from "@/src/http";

// mcpServers without its default: left out means "keep" for a member (core's protected-field check).
const UpdateBody = z.strictObject({ ...AgentConfigSchema.shape, model: q.line(200).min(1), mcpServers: AgentConfigSchema.shape.mcpServers.removeDefault().optional() });

export const GET = route({}, async ({ ctx, principal, params }) => getAgent(ctx.pool, principal.teamId, params.id!));

/** Writes a new version; existing sessions keep the version they started with. */
export const PUT = route({ body: UpdateBody }, async ({ ctx, principal, params, body }) => {
  const r = await ctx.tenancy.updateAgent(principal, params.id!, body); // the principal: members may not change protected fields
  await audit(ctx.pool, principal, "agent.update", r.id, { version: r.version });
  return r;
});

export const DELETE = route({ role: "admin" }, async ({ ctx, principal, params }) => {
  await deleteAgent(ctx.pool, principal.teamId, params.id!);
  await audit(ctx.pool, principal, "agent.delete", params.id!, {});
  return json(undefined, 204);
});
