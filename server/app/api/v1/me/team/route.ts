import { api } from "@keel/core/contract/api";
import { readCookie, route, SESSION_COOKIE } from "@/src/http";
import { meAnswer } from "@/src/auth-answers";

/** The team switcher: this dashboard login now acts for another of the user's teams. */
export const POST = route(api.me.switchTeam, async ({ req, ctx, principal, body }) => {
  const { csrfToken } = principal as typeof principal & { csrfToken?: string };
  return meAnswer({ ...(await ctx.accounts.switchTeam(principal, readCookie(req, SESSION_COOKIE), body.teamId)), csrfToken });
});
