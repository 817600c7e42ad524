import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.platform.resumeTeam, async ({ ctx, principal, params }) => ctx.platform.resumeTeam(principal, params.id));
