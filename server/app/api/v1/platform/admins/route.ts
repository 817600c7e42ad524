import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.platform.listAdmins, async ({ ctx, principal }) => ({ admins: await ctx.platform.listAdmins(principal) }));

export const POST = route(api.platform.grantAdmin, async ({ ctx, principal, body }) => json(await ctx.platform.grantAdmin(principal, body.email), 201));
