import { listAgents } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.agents.list, async ({ ctx, principal }) => ({ agents: await listAgents(ctx.pool, principal.teamId) }));

// The principal: members may not set protected fields; core audits the write in its transaction.
export const POST = route(api.agents.create, async ({ ctx, principal, body }) => json(await ctx.tenancy.createAgent(principal, body), 201));
