import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.invitations.list, async ({ ctx, principal }) => ({ invitations: await ctx.accounts.listInvitations(principal) }));

/** The token is in this answer only (the link is /invite#<token>); Keel stores its hash. */
export const POST = route(api.invitations.create, async ({ ctx, principal, body }) => json(await ctx.accounts.createInvitation(principal, body), 201));
