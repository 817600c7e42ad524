import { getSessionRow, listSessions } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.sessions.list, async ({ ctx, principal, query }) => listSessions(ctx.pool, principal.teamId, query));

export const POST = route(api.sessions.create, async ({ ctx, principal, body }) => {
  const s = await ctx.tenancy.createSession(principal, body);
  return json(await getSessionRow(ctx.pool, principal.teamId, s.id), 201);
});
