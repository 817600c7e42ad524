import { z } from "zod";
import { audit } from "@keel/core";
import { json, readCookie, route, SESSION_COOKIE } from "@/src/http";

const Body = z.strictObject({ currentPassword: z.string().max(1024), newPassword: z.string().max(1024) });

/** The logged-in user's own password (cookie sessions only); their other logins end. */
export const POST = route({ role: "viewer", body: Body }, async ({ req, ctx, principal, body }) => {
  await ctx.accounts.changePassword(principal, { ...body, keepSessionToken: readCookie(req, SESSION_COOKIE) });
  await audit(ctx.pool, principal, "user.password", principal.userId, {});
  return json(undefined, 204);
});
