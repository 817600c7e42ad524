import { teamUsage } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

export const GET = route(api.usage.get, async ({ ctx, principal, query }) => teamUsage(ctx.pool, principal.teamId, query.days ?? 30));
