import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const PUT = route(api.secrets.put, async ({ ctx, principal, params, body }) => {
  await ctx.secrets.put(principal, params.name, body.value, body.allowedHosts ?? []);
  return json(undefined, 204);
});

export const DELETE = route(api.secrets.delete, async ({ ctx, principal, params }) => {
  await ctx.secrets.remove(principal, params.name);
  return json(undefined, 204);
});
