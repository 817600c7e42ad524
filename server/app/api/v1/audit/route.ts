import { z } from "zod";
import { listAudit } from "@keel/core";
import { q, route } from "@/src/http";

const Query = z.strictObject({ before: q.seq.optional(), limit: q.int(1, 500).optional() });

export const GET = route({ role: "admin", query: Query }, async ({ ctx, principal, query }) =>
  listAudit(ctx.pool, principal, { before: query.before?.toString(), limit: query.limit }));
