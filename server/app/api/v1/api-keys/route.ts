import { z } from "zod";
import { audit, ROLES } from "@keel/core";
import { json, q, route } from "@/src/http";

const Body = z.strictObject({ name: q.line(100).min(1), role: z.enum(ROLES) });

export const GET = route({ role: "admin" }, async ({ ctx, principal }) => ({ apiKeys: await ctx.accounts.listApiKeys(principal) }));

/** The key is in this response only; Keel stores its hash. */
export const POST = route({ role: "admin", body: Body }, async ({ ctx, principal, body }) => {
  const r = await ctx.accounts.createApiKey(principal, body);
  await audit(ctx.pool, principal, "api_key.create", r.id, { name: body.name, role: r.role, prefix: r.prefix });
  return json(r, 201);
});
