import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.sessions.cancel, async ({ ctx, principal, params }) => ctx.engine.cancel({ by: principal, sessionId: params.id }));
