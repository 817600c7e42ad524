import { z } from "zod";
import { audit, ROLES } from "@keel/core";
import { json, route } from "@/src/http";

const Body = z.strictObject({ role: z.enum(ROLES) });

export const PATCH = route({ role: "admin", body: Body }, async ({ ctx, principal, params, body }) => {
  const r = await ctx.accounts.setMemberRole(principal, params.userId!, body.role);
  await audit(ctx.pool, principal, "member.role", params.userId!, { role: body.role, keysRevoked: r.keysRevoked });
  return json(r);
});

export const DELETE = route({ role: "admin" }, async ({ ctx, principal, params }) => {
  const r = await ctx.accounts.removeMember(principal, params.userId!);
  await audit(ctx.pool, principal, "member.remove", params.userId!, { keysRevoked: r.keysRevoked });
  return json(undefined, 204);
});
