import { z } from "zod";
import { audit, ROLES } from "@keel/core";
import { json, q, route } from "@/src/http";

const Body = z.strictObject({ email: q.line(254), password: z.string().max(1024), role: z.enum(ROLES) });

export const GET = route({}, async ({ ctx, principal }) => ({ members: await ctx.accounts.listMembers(principal) }));

export const POST = route({ role: "admin", body: Body }, async ({ ctx, principal, body }) => {
  const r = await ctx.accounts.addMember(principal, body);
  await audit(ctx.pool, principal, "member.add", r.userId, { email: body.email, role: body.role });
  return json(r, 201);
});
