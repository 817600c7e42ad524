import { z } from "zod";
import { q, route } from "@/src/http";
import { eventsResponse } from "@/src/events";

const Query = z.strictObject({ after: q.seq.optional(), limit: q.int(1, 5000).optional() });

export const GET = route({ query: Query }, async ({ ctx, principal, params, query }) =>
  eventsResponse(await ctx.engine.readEvents({ teamId: principal.teamId, sessionId: params.id!, afterSeq: query.after, limit: query.limit })),
);
