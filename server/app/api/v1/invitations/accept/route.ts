import { api } from "@keel/core/contract/api";
import { requestClientAddress, route } from "@/src/http";
import { loginAnswer } from "@/src/auth-answers";

/** Accepting logs the person in to the team they joined (the same cookie as a login). */
export const POST = route(api.invitations.accept, async ({ req, ctx, body }) => {
  return loginAnswer(ctx, await ctx.accounts.acceptInvitation({ ...body, clientAddress: requestClientAddress(ctx, req) }));
});
