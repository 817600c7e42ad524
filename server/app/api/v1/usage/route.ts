import { z } from "zod";
import { teamUsage } from "@keel/core";
import { q, route } from "@/src/http";

const Query = z.strictObject({ days: q.int(1, 366).optional() });

export const dynamic = "force-dynamic";

export const GET = route({ query: Query }, async ({ ctx, principal, query }) => teamUsage(ctx.pool, principal.teamId, query.days ?? 30));
