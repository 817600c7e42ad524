import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.platform.listTeams, async ({ ctx, principal }) => ({ teams: await ctx.platform.listTeams(principal) }));

export const POST = route(api.platform.createTeam, async ({ ctx, principal, body }) => json(await ctx.platform.createTeam(principal, body), 201));
