import { pendingApprovals } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

export const GET = route(api.approvals.list, async ({ ctx, principal, query }) => pendingApprovals(ctx.pool, principal.teamId, query.limit));
