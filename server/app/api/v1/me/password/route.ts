import { api } from "@keel/core/contract/api";
import { json, readCookie, route, SESSION_COOKIE } from "@/src/http";

/** The logged-in user's own password (cookie sessions only); their other logins end. */
export const POST = route(api.me.password, async ({ req, ctx, principal, body }) => {
  await ctx.accounts.changePassword(principal, { ...body, keepSessionToken: readCookie(req, SESSION_COOKIE) });
  return json(undefined, 204);
});
