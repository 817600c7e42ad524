import { api } from "@keel/core/contract/api";
import { route, json, readCookie, SESSION_COOKIE } from "@/src/http";

export const POST = route(api.auth.logout, async ({ req, ctx }) => {
  const token = readCookie(req, SESSION_COOKIE);
  if (token) await ctx.accounts.logout(token);
  return json(undefined, 204, { "set-cookie": `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0` });
});
