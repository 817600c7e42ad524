import { api } from "@keel/core/contract/api";
import { requestClientAddress, route } from "@/src/http";
import { loginAnswer } from "@/src/auth-answers";

export const POST = route(api.auth.login, async ({ req, ctx, body }) => {
  // The socket's address, or what a trusted proxy says (KEEL_TRUSTED_PROXIES): limits are per address.
  return loginAnswer(ctx, await ctx.accounts.login({ ...body, clientAddress: requestClientAddress(ctx, req) }));
});
