import { api } from "@keel/core/contract/api";
import { requestClientAddress, route, json, SESSION_COOKIE } from "@/src/http";

export const POST = route(api.auth.login, async ({ req, ctx, body }) => {
  // The socket's address, or what a trusted proxy says (KEEL_TRUSTED_PROXIES): limits are per address.
  const r = await ctx.accounts.login({ ...body, clientAddress: requestClientAddress(ctx, req) });
  const cookie = [`${SESSION_COOKIE}=${r.token}`, "Path=/", "HttpOnly", "SameSite=Lax", `Expires=${r.expiresAt.toUTCString()}`];
  if (ctx.env.KEEL_COOKIE_SECURE) cookie.push("Secure");
  return json({ csrfToken: r.csrfToken, expiresAt: r.expiresAt, teamId: r.principal.teamId, role: r.principal.role, actor: r.principal.actor }, 200, {
    "set-cookie": cookie.join("; "),
  });
});
