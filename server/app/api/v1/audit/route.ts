import { listAudit } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const GET = route(api.audit.list, async ({ ctx, principal, query }) =>
  listAudit(ctx.pool, principal, { before: query.before?.toString(), limit: query.limit }),
);
