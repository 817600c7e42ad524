import { z } from "zod";
import { audit, listSessions } from "@keel/core";
import { json, q, route } from "@/src/http";

const Query = z.strictObject({
  cursor: z.string().max(500).optional(),
  limit: q.int(1, 200).optional(),
  agentId: z.string().max(100).optional(),
  status: z.enum(["active", "idle", "archived"]).optional(),
  q: z.string().max(200).optional(),
});
const CreateBody = z.strictObject({ agentId: q.line(100), title: q.line(500).optional() });

export const GET = route({ query: Query }, async ({ ctx, principal, query }) => listSessions(ctx.pool, principal.teamId, query));

export const POST = route({ body: CreateBody }, async ({ ctx, principal, body }) => {
  const s = await ctx.tenancy.createSession(principal.teamId, body);
  await audit(ctx.pool, principal, "session.create", s.id, { agentId: s.agentId });
  return json(s, 201);
});
