import { z } from "zod";
import { audit } from "@keel/core";
import { json, route } from "@/src/http";

/** allowedHosts: the hosts the workers may send this secret to (provider key, MCP header); a bound secret never enters a sandbox. */
const Body = z.strictObject({ value: z.string().min(1).max(64 * 1024), allowedHosts: z.array(z.string().min(1).max(300)).max(50).optional() });

export const PUT = route({ role: "admin", body: Body }, async ({ ctx, principal, params, body }) => {
  await ctx.secrets.put(principal, params.name!, body.value, body.allowedHosts ?? []);
  await audit(ctx.pool, principal, "secret.put", params.name!, { allowedHosts: body.allowedHosts ?? [] }); // the value is never audited
  return json(undefined, 204);
});

export const DELETE = route({ role: "admin" }, async ({ ctx, principal, params }) => {
  await ctx.secrets.remove(principal, params.name!);
  await audit(ctx.pool, principal, "secret.delete", params.name!, {});
  return json(undefined, 204);
});
