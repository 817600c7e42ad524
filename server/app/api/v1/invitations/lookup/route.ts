import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.invitations.lookup, async ({ ctx, body }) => ctx.accounts.lookupInvitation(body.token));
