import { api } from "@keel/core/contract/api";
import { json, route } from "@/src/http";

export const GET = route(api.apiKeys.list, async ({ ctx, principal }) => ({ apiKeys: await ctx.accounts.listApiKeys(principal) }));

/** The key is in this response only; Keel stores its hash. */
export const POST = route(api.apiKeys.create, async ({ ctx, principal, body }) => {
  return json(await ctx.accounts.createApiKey(principal, body), 201);
});
