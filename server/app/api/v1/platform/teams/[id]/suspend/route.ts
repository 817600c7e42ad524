import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.platform.suspendTeam, async ({ ctx, principal, params, body }) => ctx.platform.suspendTeam(principal, params.id, body.reason));
