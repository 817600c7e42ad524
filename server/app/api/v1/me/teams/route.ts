import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const GET = route(api.me.teams, async ({ ctx, principal }) => ({ teams: await ctx.accounts.myTeams(principal) }));
