import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";
import { eventsResponse } from "@/src/events";

export const GET = route(api.sessions.events, async ({ ctx, principal, params, query }) =>
  eventsResponse(await ctx.engine.readEvents({ teamId: principal.teamId, sessionId: params.id, afterSeq: query.after, limit: query.limit })),
);
