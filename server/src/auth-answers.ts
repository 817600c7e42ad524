// The answers of the routes that log someone in or change who the caller is: login, accepting an
// invitation (both set the session cookie), /me and the team switcher.
import type { LoginResult, Principal } from "@keel/core";
import type { Context } from "./context";
import { json, SESSION_COOKIE } from "./http";

/** The session cookie (HttpOnly, SameSite=Lax; Secure with KEEL_COOKIE_SECURE) and LoginAnswer. */
export function loginAnswer(ctx: Context, r: LoginResult): Response {
  const cookie = [`${SESSION_COOKIE}=${r.token}`, "Path=/", "HttpOnly", "SameSite=Lax", `Expires=${r.expiresAt.toUTCString()}`];
  if (ctx.env.KEEL_COOKIE_SECURE) cookie.push("Secure");
  return json({ csrfToken: r.csrfToken, expiresAt: r.expiresAt, teamId: r.principal.teamId, role: r.principal.role, actor: r.principal.actor }, 200, {
    "set-cookie": cookie.join("; "),
  });
}

/** The caller as /me answers it (csrfToken for cookie sessions: the dashboard reads it after a reload). */
export function meAnswer(principal: Principal & { csrfToken?: string }) {
  const { csrfToken, platformAdmin, ...p } = principal;
  return { ...p, platformAdmin: platformAdmin ?? false, csrfToken: csrfToken ?? null };
}
